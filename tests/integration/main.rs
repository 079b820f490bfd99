//! The integration tests: one test binary (linked once), a module per feature, and one
//! shared harness in [`common`]: the in-process `App` over a temporary store holding the
//! committed fixture, and the real binary started as a server.

#[macro_use]
mod common;

mod accounts;
mod any_corpus;
mod billing;
mod bulk_forecasts;
mod cli;
mod community;
mod contests;
mod contract;
mod demo;
mod economics;
mod forecasts;
mod growth;
mod importers;
mod journey;
mod mail;
mod newsletter;
mod newsletter_mail;
mod ops;
mod pages;
mod papers;
mod referrals;
mod robustness;
mod support;
mod web;
mod webhooks;
