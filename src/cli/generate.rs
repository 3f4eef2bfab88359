//! `tskeyctl generate man|completions SHELL`: the man pages and shell completions, generated
//! from the same clap definitions as `--help`, so they never disagree (ripgrep's `--generate`).
//! Every page ends with the ENVIRONMENT, FILES and EXIT STATUS sections of [`super::manual`].
//! Packagers call it (`installShellCompletion`, `installManPage`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{manual, write_stdout};
use crate::error::Error;
use crate::sink::{self, WriteOptions};

/// Generate the man pages or shell completions.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl generate man | man -l -\n  \
tskeyctl generate man --dir /usr/local/share/man/man1\n  \
tskeyctl generate completions bash > /etc/bash_completion.d/tskeyctl")]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// roff man page(s): tskeyctl.1 on stdout, or every page (one per command) into --dir.
    Man {
        /// Write tskeyctl.1 and tskeyctl-COMMAND.1 (mode 0644) into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Completion script for SHELL on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// One page: clap_mangen's sections, then the manual's own, then version and authors.
fn page(cmd: clap::Command) -> Result<Vec<u8>, Error> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    let io = |r: std::io::Result<()>| r.map_err(Error::Stdout);
    io(man.render_title(&mut out))?;
    io(man.render_name_section(&mut out))?;
    io(man.render_synopsis_section(&mut out))?;
    io(man.render_description_section(&mut out))?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        io(man.render_options_section(&mut out))?;
    }
    if cmd.has_subcommands() {
        io(man.render_subcommands_section(&mut out))?;
    }
    if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        io(man.render_extra_section(&mut out))?;
    }
    out.extend_from_slice(manual::man_sections().as_bytes());
    if cmd.get_version().is_some() {
        io(man.render_version_section(&mut out))?;
    }
    Ok(out)
}

/// Every page: the command's, then each visible subcommand's (`tskeyctl-provision.1`…).
fn pages(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), Error> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub.clone(), out)?;
    }
    let name = clap_mangen::Man::new(cmd.clone()).get_filename();
    out.push((name, page(cmd)?));
    Ok(())
}

pub fn generate(a: GenerateArgs, mut cmd: clap::Command) -> Result<(), Error> {
    match a.what {
        What::Man { dir: Some(dir) } => {
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            let mut all = Vec::new();
            pages(cmd, &mut all)?;
            let write = WriteOptions {
                mode: 0o644,
                ..WriteOptions::default()
            };
            for (name, bytes) in all {
                sink::write_atomic(&dir.join(name), &bytes, &write)?;
            }
            Ok(())
        }
        What::Man { dir: None } => {
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            write_stdout(&page(cmd)?)
        }
        What::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "tskeyctl", &mut out);
            write_stdout(&out)
        }
    }
}
