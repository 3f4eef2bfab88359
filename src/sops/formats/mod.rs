//! The five sops stores: each loads bytes into the sops tree and emits a tree back, laid out
//! byte for byte like the real sops 3.11 (go-yaml v3, encoding/json, go-ini, its dotenv store).

pub mod binary;
pub mod dotenv;
pub mod ini;
pub mod json;
pub mod yaml;
mod yaml_emit;
mod yaml_scalar;

use std::fmt;
use std::path::Path;

use crate::source::Origin;

/// A sops store format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML (multi-document).
    Yaml,
    /// JSON (top-level object).
    Json,
    /// dotenv `KEY=value` lines.
    Dotenv,
    /// INI sections.
    Ini,
    /// Any other file: the whole content as one string `data`.
    Binary,
}

impl Format {
    /// sops's choice by file extension (`formats.go`): anything unknown is binary.
    pub fn from_path(p: &Path) -> Format {
        match p.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            Some("ini") => Format::Ini,
            _ => Format::Binary,
        }
    }

    /// The format of a named file by [`Format::from_path`]; stdin is binary.
    pub fn of_origin(origin: &Origin) -> Format {
        match origin {
            Origin::File(p) => Format::from_path(p),
            Origin::Stdin => Format::Binary,
        }
    }

    /// Parses `--input-type` / `--output-type` values.
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" | "env" => Format::Dotenv,
            "ini" => Format::Ini,
            "binary" => Format::Binary,
            _ => return None,
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
            Format::Binary => "binary",
        })
    }
}

/// Why a document could not be loaded or emitted. Messages cite lines, never values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// Syntax error.
    #[error("invalid {format}: {reason}")]
    Syntax { format: Format, reason: String },
    /// Valid syntax that sops does not accept (top-level list, non-string key, …).
    #[error("unsupported {format} content: {reason}")]
    Unsupported { format: Format, reason: String },
    /// The tree cannot be written in this format.
    #[error("cannot write this document as {format}: {reason}")]
    Emit { format: Format, reason: String },
}

pub(crate) fn syntax(format: Format, reason: impl Into<String>) -> FormatError {
    FormatError::Syntax {
        format,
        reason: reason.into(),
    }
}

pub(crate) fn unsupported(format: Format, reason: impl Into<String>) -> FormatError {
    FormatError::Unsupported {
        format,
        reason: reason.into(),
    }
}

pub(crate) fn emit_err(format: Format, reason: impl Into<String>) -> FormatError {
    FormatError::Emit {
        format,
        reason: reason.into(),
    }
}
