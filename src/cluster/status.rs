//! `dingtail cluster status`.
