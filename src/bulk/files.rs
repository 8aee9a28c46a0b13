//! The input and output of a bulk run, checked before anything is opened for writing:
//! `File::create` truncates, so an output that is the input (the same file by another name, a
//! symlink or a hard link) is refused first, and `--resume` keeps only lines it verified.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::records::Records;
use super::{resume, Options};

/// The input, open; the output, checked but not opened for writing until `create`.
pub struct Files {
    pub input: Records,
    /// The input's size in bytes, for the progress bar: a plain file's only.
    pub size: Option<u64>,
    /// Lines of an earlier, interrupted run that `--resume` keeps.
    pub resumed: u64,
    output: Output,
}

enum Output {
    Stdout,
    New(PathBuf),
    /// `--resume`: the file, cut after its last kept line.
    Kept(PathBuf, u64),
}

impl Files {
    pub fn open(options: &Options) -> io::Result<Self> {
        refuse_same_file(options)?;
        let raw: Box<dyn BufRead + Send> = match &options.input {
            Some(path) => Box::new(BufReader::with_capacity(1 << 16, File::open(path).map_err(named(path))?)),
            None => Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
        };
        let name = options.input.as_ref().map_or("stdin".into(), |p| p.display().to_string());
        let mut input = Records::open(raw, options.compression, &options.format, &options.fields)
            .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?;
        let size = match input.decompressed() {
            true => None,
            false => options.input.as_ref().and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len()),
        };
        let (output, resumed) = match &options.output {
            None => (Output::Stdout, 0),
            Some(path) if !options.resume || !path.exists() => (Output::New(path.clone()), 0),
            Some(path) => {
                let mut kept = BufReader::new(File::open(path).map_err(named(path))?);
                let kept = resume::check(&mut kept, &mut input).map_err(|why| {
                    refused(format!(
                        "--resume: {} is not the output of an interrupted run on this input ({why}); \
                         it was left untouched",
                        path.display()
                    ))
                })?;
                if let Some(record) = kept.cut {
                    // The input record of the cut-off answer is read again first.
                    input.push_back(record);
                }
                (Output::Kept(path.clone(), kept.end), kept.lines)
            }
        };
        Ok(Self { input, size, resumed, output })
    }

    /// What error messages call the output.
    pub fn output_name(&self) -> String {
        match &self.output {
            Output::Stdout => "stdout".into(),
            Output::New(path) | Output::Kept(path, _) => path.display().to_string(),
        }
    }

    /// Opens the output for writing: only now is a file created (truncated) or cut.
    pub fn create(&mut self) -> io::Result<Box<dyn Write + Send>> {
        Ok(match &self.output {
            Output::Stdout => Box::new(BufWriter::new(io::stdout())),
            Output::New(path) => Box::new(BufWriter::new(File::create(path).map_err(named(path))?)),
            Output::Kept(path, end) => {
                let mut file = OpenOptions::new().write(true).open(path).map_err(named(path))?;
                file.set_len(*end)?;
                file.seek(SeekFrom::End(0))?;
                Box::new(BufWriter::new(file))
            }
        })
    }
}

/// Refuses an output that is the input's file (same device and inode): writing it would destroy
/// what is being read, and `--resume` would take the input's lines for answers.
fn refuse_same_file(options: &Options) -> io::Result<()> {
    let input = match &options.input {
        Some(path) => std::fs::metadata(path).map_err(named(path))?,
        None => match fd_metadata(io::stdin().as_fd()) {
            Some(meta) => meta,
            None => return Ok(()),
        },
    };
    let output = match &options.output {
        Some(path) => match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(named(path)(e)),
        },
        None => match fd_metadata(io::stdout().as_fd()) {
            Some(meta) => meta,
            None => return Ok(()),
        },
    };
    if !(input.is_file() && input.dev() == output.dev() && input.ino() == output.ino()) {
        return Ok(());
    }
    let output = options.output.as_ref().map_or("stdout".into(), |p| p.display().to_string());
    let input = options.input.as_ref().map_or("stdin".into(), |p| p.display().to_string());
    Err(refused(format!(
        "the output ({output}) is the input file ({input}): writing it would destroy the input; \
         choose another --output"
    )))
}

fn fd_metadata(fd: std::os::fd::BorrowedFd<'_>) -> Option<Metadata> {
    File::from(fd.try_clone_to_owned().ok()?).metadata().ok()
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// An I/O error that names its file.
fn named(path: &Path) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
