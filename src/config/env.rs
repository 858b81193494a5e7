//! `${VAR}` and `${VAR:-default}` expansion from the environment (filled in by the loader work).
