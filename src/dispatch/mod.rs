//! Dispatch: when to send what to each robot, under DingTalk's rate limit (issue 5).
