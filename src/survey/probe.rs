//! The survey's look at the file system, as the user the process runs as: the tailer's own
//! discovery (`tail::discover::InputGlobs`, so the files counted are the files `run` follows),
//! `access(2)` for readability of each file found and writability of the state directory (no
//! file is opened or created), `journal::probe` for a journald input (journalctl opens the
//! journal and reads nothing), and the main config's text for the positions of the warnings.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{Access, access};

use crate::config::InputConfig;
use crate::config::span::Spans;
use crate::journal::ReaderOptions;
use crate::pipeline::Pipeline;
use crate::state::DB_FILE;
use crate::survey::{Facts, GlobFacts, InputFacts, StateDir, Survey, glob_dir, warnings};
use crate::tail::discover::{InputGlobs, Scan};

/// Surveys `pipeline` on this machine, now.
pub fn survey(pipeline: &Pipeline) -> Survey {
    let facts = gather(pipeline);
    // Positions only: a config that cannot be read again (it was just loaded) has none.
    let spans = fs::read_to_string(&pipeline.config.source)
        .ok()
        .and_then(|text| Spans::parse(&text).ok())
        .unwrap_or_default();
    Survey {
        // A journald input has no files to count (and no `dingtail_input_files` series).
        files: facts
            .inputs
            .iter()
            .filter(|(name, _)| {
                pipeline
                    .config
                    .inputs
                    .get(*name)
                    .is_none_or(|input| input.journald.is_none())
            })
            .map(|(name, found)| (name.clone(), found.files.len()))
            .collect(),
        warnings: warnings(pipeline, &facts, &spans),
    }
}

/// The facts the warnings are decided from.
pub fn gather(pipeline: &Pipeline) -> Facts {
    let inputs: BTreeMap<String, InputFacts> = pipeline
        .config
        .inputs
        .iter()
        .map(|(name, input)| (name.clone(), input_facts(input)))
        .collect();
    Facts {
        inputs,
        state_dir: state_dir(&pipeline.config.state_dir),
    }
}

fn input_facts(input: &InputConfig) -> InputFacts {
    if let Some(journald) = &input.journald {
        return InputFacts {
            journal: crate::journal::probe::probe(&ReaderOptions::standard().program, journald),
            ..InputFacts::default()
        };
    }
    let globs = input
        .paths
        .iter()
        .map(|glob| {
            let dir = glob_dir(glob);
            GlobFacts {
                glob: glob.clone(),
                dir_exists: dir.is_dir(),
                dir,
            }
        })
        .collect();
    let Ok(input_globs) = InputGlobs::new(input) else {
        return InputFacts {
            globs,
            ..InputFacts::default()
        };
    };
    let mut scan = Scan::default();
    let mut files: Vec<PathBuf> = input_globs
        .discover(&mut scan)
        .into_iter()
        .map(|candidate| candidate.path)
        .collect();
    files.sort();
    files.dedup();
    let unreadable = files
        .iter()
        .filter_map(|file| match access(file, Access::READ_OK) {
            Ok(()) => None,
            Err(errno) => Some((file.clone(), reason(io::Error::from(errno)))),
        })
        .collect();
    let unlisted = scan
        .unknown
        .into_iter()
        .map(|(path, unknown)| (path, reason(unknown.error)))
        .collect();
    InputFacts {
        files,
        unreadable,
        unlisted,
        globs,
        journal: None,
    }
}

/// Whether `dir` exists and can be written, or can be created; and whether its database, when
/// there is one, can be read and written.
pub fn state_dir(dir: &Path) -> StateDir {
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => StateDir::NotADirectory,
        Ok(_) => {
            if let Err(errno) = access(dir, Access::WRITE_OK | Access::EXEC_OK) {
                return StateDir::NotWritable(reason(io::Error::from(errno)));
            }
            let db = dir.join(DB_FILE);
            match access(&db, Access::READ_OK | Access::WRITE_OK) {
                Err(errno) if errno != rustix::io::Errno::NOENT => {
                    StateDir::DatabaseNotWritable(db, reason(io::Error::from(errno)))
                }
                _ => StateDir::Usable,
            }
        }
        Err(_) => {
            let Some(ancestor) = dir.ancestors().skip(1).find(|a| a.is_dir()) else {
                return StateDir::Usable;
            };
            match access(ancestor, Access::WRITE_OK | Access::EXEC_OK) {
                Ok(()) => StateDir::Usable,
                Err(errno) => StateDir::CannotCreate {
                    ancestor: ancestor.to_path_buf(),
                    reason: reason(io::Error::from(errno)),
                },
            }
        }
    }
}

/// What the OS said, lowercase and without the `(os error N)` tail.
fn reason(err: io::Error) -> String {
    let text = match err.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::ReadOnlyFilesystem => "read-only file system".to_string(),
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        _ => err.to_string(),
    };
    match text.find(" (os error") {
        Some(at) => text.get(..at).unwrap_or(&text).to_lowercase(),
        None => text.to_lowercase(),
    }
}
