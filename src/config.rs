//! Flags + environment → a validated, resolved `Config`. The only step that
//! does discovery I/O (finding the own address).

use std::net::IpAddr;
use std::path::PathBuf;

use crate::{discovery, reporter};

/// One exported variable. Secret ones are redacted in logs and `inspect`.
#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// A template rendered to a file.
#[derive(Debug, Clone)]
pub struct RenderedFile {
    pub source: PathBuf,
    pub dest: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub command: Vec<String>,
    pub address: IpAddr,
    /// The source that gave the address, e.g. `env:POD_IP`.
    pub source: String,
    pub basename: String,
    pub node: String,
    pub exports: Vec<Export>,
    pub files: Vec<RenderedFile>,
    pub query: Option<String>,
    pub discovery: discovery::Settings,
    pub reporter: reporter::Settings,
}
