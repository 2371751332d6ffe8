//! Output files that appear all together or not at all.
//!
//! Every file is first written completely under a hidden temporary name in the output
//! directory (`.<name>.partial`), and only when every file of a run has been produced does
//! [`Outputs::commit`] rename them to their real names (a rename within one directory is
//! atomic). If anything fails before that, dropping the [`Outputs`] removes the temporary
//! files, so a failed run leaves no partial or half-written files behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A set of files being produced in one directory.
#[derive(Debug)]
pub struct Outputs {
    dir: PathBuf,
    staged: Vec<(PathBuf, PathBuf)>,
}

impl Outputs {
    /// Output files for directory `dir` (created if missing).
    pub fn new(dir: &Path) -> Result<Self, String> {
        fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create output directory: {e}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            staged: Vec::new(),
        })
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` as the future file `name` (a plain file name, no directories).
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let target = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.partial"));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(format!("{}: cannot write: {e}", tmp.display()));
        }
        self.staged.push((tmp, target));
        Ok(())
    }

    /// Renames every staged file to its real name and returns the final paths.
    pub fn commit(mut self) -> Result<Vec<PathBuf>, String> {
        let staged = std::mem::take(&mut self.staged);
        let mut done = Vec::new();
        let mut error = None;
        for (tmp, target) in &staged {
            if error.is_none() {
                match fs::rename(tmp, target) {
                    Ok(()) => done.push(target.clone()),
                    Err(e) => {
                        error = Some(format!(
                            "{}: cannot rename into place: {e}",
                            target.display()
                        ))
                    }
                }
            } else {
                let _ = fs::remove_file(tmp);
            }
        }
        match error {
            None => Ok(done),
            Some(e) => Err(e),
        }
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = fs::remove_file(tmp);
        }
    }
}
