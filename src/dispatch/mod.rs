//! Dispatch: when to send what to each robot, under DingTalk's rate limit (issue 5). The deciding
//! parts are pure (they take `now` and return decisions); the task that performs them lives here.

pub mod batcher;
pub mod queue;
pub mod ratelimit;
pub mod retry;
