//! Shared by the test binaries: the `Dir`/`Cmd` harness, the DingTalk stand-in, and the Stream
//! gateway stand-in and callback helpers of the chat tests.
#![allow(dead_code)] // Each test binary uses a different part of the support code.

pub mod alerts;
pub mod chat;
pub mod cluster;
pub mod daemon;
pub mod follow;
pub mod gateway;
pub mod harness;
pub mod http;
pub mod redis;
pub mod standin;
