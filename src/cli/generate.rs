//! `tskeyctl generate man|completions SHELL`: the man page and shell completions, generated from
//! the same clap definitions as `--help`, so the three never disagree (ripgrep's `--generate`).
//! Hidden from `--help`; packagers call it (`installShellCompletion`, `installManPage`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::write_stdout;
use crate::error::Error;
use crate::sink::SinkError;

/// Generate the man page or shell completions.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// roff man page(s): tskeyctl.1 on stdout, or every page (one per command) into --dir.
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Completion script for SHELL on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

pub fn generate(a: GenerateArgs, mut cmd: clap::Command) -> Result<(), Error> {
    match a.what {
        What::Man { dir: Some(dir) } => {
            clap_mangen::generate_to(cmd, &dir).map_err(|source| SinkError::Io {
                path: dir,
                step: "write the man pages",
                source,
            })?;
            Ok(())
        }
        What::Man { dir: None } => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(Error::Stdout)?;
            write_stdout(&out)
        }
        What::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "tskeyctl", &mut out);
            write_stdout(&out)
        }
    }
}
