//! `ServiceUser`: the identity `dingtail check --as USER` takes before checking, so that "can the
//! service read this log?" is answered by the kernel for the user the service runs as, with the
//! same semantics as `setpriv --reuid U --regid G --init-groups`: real, effective and saved ids
//! and the supplementary groups all change, for good (the check is a one-shot process).
//!
//! Resolving a name reads `/etc/passwd` and `/etc/group` (users only known to NSS, such as a
//! unit's `DynamicUser=`, are given by number: `--as 61234:61234,adm`). [`ServiceUser::parse`] is
//! pure; [`ServiceUser::assume`] is the edge and refuses to run unless the process has exactly
//! one thread, because Linux changes credentials per thread.

use std::fmt;
use std::fs;

use rustix::process::{Gid, Uid, getegid, geteuid};
use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};

/// A user and its groups, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceUser {
    /// The name as given (or the number).
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Its supplementary groups (the primary one included), sorted.
    pub groups: Vec<u32>,
}

impl ServiceUser {
    /// Resolves `spec` (`USER` or `USER:GROUP[,GROUP...]`, names or numbers) against the
    /// system's user and group files.
    ///
    /// # Errors
    /// An unknown user or group, or a file that cannot be read, in words.
    pub fn lookup(spec: &str) -> Result<ServiceUser, String> {
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = fs::read_to_string("/etc/group").unwrap_or_default();
        ServiceUser::parse(spec, &passwd, &group)
    }

    /// Resolves `spec` against the text of `/etc/passwd` and `/etc/group`.
    ///
    /// # Errors
    /// An unknown user or group, in words.
    pub fn parse(spec: &str, passwd: &str, group: &str) -> Result<ServiceUser, String> {
        let (user, groups) = match spec.split_once(':') {
            Some((user, groups)) => (user, Some(groups)),
            None => (spec, None),
        };
        if user.is_empty() {
            return Err("no user given".to_string());
        }
        let entry = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let (name, uid, gid) = (fields.first()?, fields.get(2)?, fields.get(3)?);
            let (uid, gid) = (uid.parse::<u32>().ok()?, gid.parse::<u32>().ok()?);
            (*name == user || user.parse::<u32>() == Ok(uid)).then(|| (name.to_string(), uid, gid))
        });
        let group_id = |name: &str| -> Result<u32, String> {
            if let Ok(gid) = name.parse::<u32>() {
                return Ok(gid);
            }
            group
                .lines()
                .find_map(|line| {
                    let fields: Vec<&str> = line.split(':').collect();
                    (fields.first() == Some(&name))
                        .then(|| fields.get(2)?.parse::<u32>().ok())
                        .flatten()
                })
                .ok_or_else(|| format!("no group `{name}` in /etc/group"))
        };
        let (name, uid, default_gid) = match (entry, user.parse::<u32>()) {
            (Some(entry), _) => entry,
            (None, Ok(uid)) => (user.to_string(), uid, uid),
            (None, Err(_)) => return Err(format!("no user `{user}` in /etc/passwd")),
        };
        let (gid, mut groups) = match groups {
            Some(list) => {
                let ids = list
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(group_id)
                    .collect::<Result<Vec<u32>, String>>()?;
                let Some(&first) = ids.first() else {
                    return Err("no group after `:`".to_string());
                };
                (first, ids)
            }
            None => {
                // `initgroups`: the primary group and every group that lists the user.
                let mut ids = vec![default_gid];
                for line in group.lines() {
                    let fields: Vec<&str> = line.split(':').collect();
                    let members = fields.get(3).copied().unwrap_or_default();
                    if members.split(',').any(|member| member == name) {
                        if let Some(gid) = fields.get(2).and_then(|g| g.parse::<u32>().ok()) {
                            ids.push(gid);
                        }
                    }
                }
                (default_gid, ids)
            }
        };
        groups.sort_unstable();
        groups.dedup();
        Ok(ServiceUser {
            name,
            uid,
            gid,
            groups,
        })
    }

    /// Makes this process that user, for good: supplementary groups, then the group, then the
    /// user (real, effective and saved ids), as `setpriv` does.
    ///
    /// # Errors
    /// Not root (and not already that user), more than one thread, or a refused call, in words.
    pub fn assume(&self) -> Result<(), String> {
        if geteuid().as_raw() == self.uid && getegid().as_raw() == self.gid {
            return Ok(());
        }
        if !geteuid().is_root() {
            return Err(format!(
                "only root can check as another user (this is uid {})",
                geteuid().as_raw()
            ));
        }
        let n_threads = fs::read_dir("/proc/self/task").map_or(0, Iterator::count);
        if n_threads != 1 {
            return Err(format!(
                "cannot change identity in a process with {n_threads} threads"
            ));
        }
        let groups: Vec<Gid> = self.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        set_thread_groups(&groups).map_err(|e| format!("setgroups: {e}"))?;
        let gid = Gid::from_raw(self.gid);
        set_thread_res_gid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
        let uid = Uid::from_raw(self.uid);
        set_thread_res_uid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))?;
        if geteuid().as_raw() != self.uid {
            return Err("the user id did not change".to_string());
        }
        Ok(())
    }
}

impl fmt::Display for ServiceUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self.groups.iter().map(u32::to_string).collect();
        write!(
            f,
            "{} (uid {}, gid {}, groups {})",
            self.name,
            self.uid,
            self.gid,
            groups.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::service_user::ServiceUser;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nadm:x:4:syslog,app\nnogroup:x:65534:\napp:x:1000:\n";

    #[test]
    fn names_numbers_and_groups_resolve_like_initgroups() {
        let app = ServiceUser::parse("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.groups.clone()),
            (1000, 1000, vec![4, 1000])
        );
        let nobody = ServiceUser::parse("nobody:nogroup,adm", PASSWD, GROUP).unwrap();
        assert_eq!(
            (nobody.uid, nobody.gid, nobody.groups.clone()),
            (65534, 65534, vec![4, 65534])
        );
        let dynamic = ServiceUser::parse("61234:61234,4", PASSWD, GROUP).unwrap();
        assert_eq!((dynamic.uid, dynamic.gid), (61234, 61234));
        assert_eq!(
            dynamic.to_string(),
            "61234 (uid 61234, gid 61234, groups 4,61234)"
        );
        let by_number = ServiceUser::parse("1000", PASSWD, GROUP).unwrap();
        assert_eq!(by_number.name, "app");
        assert!(
            ServiceUser::parse("ghost", PASSWD, GROUP)
                .unwrap_err()
                .contains("no user `ghost`")
        );
        assert!(
            ServiceUser::parse("app:wheel", PASSWD, GROUP)
                .unwrap_err()
                .contains("no group `wheel`")
        );
    }
}
