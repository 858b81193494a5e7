//! Shared by the test binaries: the `Dir`/`Cmd` harness and the DingTalk stand-in.
#![allow(dead_code)] // Each test binary uses a different part of the support code.

pub mod daemon;
pub mod follow;
pub mod harness;
pub mod standin;
