//! DingTalk custom-robot client: the only module that knows DingTalk's field names, limits and
//! error codes (issue 2).
