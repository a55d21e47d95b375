//! Running a script's sites from one machine (issue 19, items F–G): the
//! script travels as a bundle on stdin (`up -`), each site holds its
//! changes until every site is ready (`--hold`), and the driver fans out
//! over ssh (`--all-sites`).

pub mod all_sites;
pub mod bundle;
pub mod fanout;
pub mod hold;
pub mod pingall;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use miette::Report;

use crate::diag;
use crate::opts::{read_script, script_dir};
use crate::script::{Resolver, Session};

/// The script a command runs: a file, or what came on stdin (`-`).
#[derive(Debug)]
pub struct Script {
    /// The file diagnostics name (a bundle's main entry for `-`).
    pub file: PathBuf,
    pub text: String,
    /// Where `import` and `read_file` look (none for stdin).
    pub dir: Option<PathBuf>,
    /// The bundle's modules, found by `import` instead of files.
    pub modules: Option<HashMap<String, String>>,
}

pub fn is_stdin(file: &Path) -> bool {
    file.as_os_str() == "-"
}

impl Script {
    /// Read `file`, or stdin for `-` (which needs `--name`: a stream has
    /// no file stem to name the topology).
    pub fn read(file: &Path, named: bool) -> Result<Self, Report> {
        if !is_stdin(file) {
            return Ok(Self {
                file: file.to_path_buf(),
                text: read_script(file)?,
                dir: script_dir(file),
                modules: None,
            });
        }
        if !named {
            return Err(diag::plain(
                "`up -` reads the script from stdin, which has no file name to name the topology",
                Some("give it one with --name NAME"),
            ));
        }
        let input = bundle::read(&mut std::io::stdin().lock())
            .map_err(|e| diag::plain(e.to_string(), None))?;
        Ok(match input {
            bundle::Stdin::Plain(text) => Self {
                file: PathBuf::from("-"),
                text,
                dir: None,
                modules: None,
            },
            bundle::Stdin::Bundle(b) => {
                let (main, text) = b.main();
                Self {
                    file: PathBuf::from(main),
                    text: text.to_string(),
                    dir: None,
                    modules: Some(b.modules()),
                }
            }
        })
    }

    pub fn is_bundle(&self) -> bool {
        self.modules.is_some()
    }

    /// A session for this script: its imports from the bundle, if any.
    pub fn install(&self, session: &mut Session) {
        if let Some(m) = &self.modules {
            let r = Resolver::new(None, session.sources.clone()).with_bundle(m.clone());
            session.engine.set_module_resolver(r);
        }
    }
}

/// The sites of a script evaluated without a kernel, as ssh targets.
fn site_targets(session: &Session) -> Vec<fanout::Target> {
    crate::script::declared_sites(session)
        .into_iter()
        .map(|s| fanout::Target {
            name: s.name,
            ssh: s.ssh,
        })
        .collect()
}
