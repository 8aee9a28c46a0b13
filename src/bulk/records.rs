//! The input as records: decompressed (gzip or zstd, known by their magic bytes), then split
//! into JSON Lines or CSV rows (RFC 4180: a quoted field may hold commas, quotes and newlines).
//! Workers parse the JSON lines (that is most of the reading's cost); CSV rows are split here,
//! since a row's end is only known by reading its quotes.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};

use serde_json::Value;

use super::read_line;
use crate::config::MAX_BODY_BYTES;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" | "gz" => Ok(Self::Gzip),
            "zstd" | "zst" => Ok(Self::Zstd),
            "none" => Ok(Self::None),
            _ => Err(format!("--compression {s:?}: expected gzip, zstd or none")),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub enum Format {
    #[default]
    Jsonl,
    Csv,
}

/// Where each record's fields are: for JSON Lines a JSON pointer (`/data/text`) or a top-level
/// name; for CSV a column of the header. `None`: `text` and `id` (JSON Lines: also `target` or
/// `context`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub text: Option<String>,
    pub id: Option<String>,
    /// CSV only: the column of a pair task's target or context.
    pub second: Option<String>,
}

/// One input record, as the workers get it.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Line(Vec<u8>),
    Row(Row),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: Option<String>,
    /// The text and second text, or why the row cannot be read.
    pub fields: Result<(String, Option<String>), String>,
}

pub struct Records {
    source: Source,
    pending: Option<Record>,
    id_field: Option<String>,
    decompressed: bool,
    /// Bytes read so far (decompressed), for the progress bar.
    consumed: u64,
}

enum Source {
    Lines(Box<dyn BufRead + Send>),
    Csv { reader: csv::Reader<Bounded>, columns: Columns, width: usize },
}

struct Columns {
    text: usize,
    id: Option<usize>,
    second: Option<usize>,
}

impl Records {
    /// `input` decompressed (as `compression` says, else as its first bytes say) and read in
    /// `format`. A CSV header without the columns asked for is refused here.
    pub fn open(
        input: Box<dyn BufRead + Send>,
        compression: Option<Compression>,
        format: &Format,
        fields: &Fields,
    ) -> io::Result<Self> {
        let (input, decompressed) = decompress(input, compression)?;
        let source = match format {
            Format::Jsonl => Source::Lines(input),
            Format::Csv => csv_source(input, fields)?,
        };
        Ok(Self { source, pending: None, id_field: fields.id.clone(), decompressed, consumed: 0 })
    }

    /// Whether the bytes read are not the file's (gzip or zstd).
    pub fn decompressed(&self) -> bool {
        self.decompressed
    }

    /// JSON Lines from `input` as it is: `--resume`'s tests.
    #[cfg(test)]
    pub fn lines(input: Box<dyn BufRead + Send>) -> Self {
        Self { source: Source::Lines(input), pending: None, id_field: None, decompressed: false, consumed: 0 }
    }

    pub fn read(&mut self) -> io::Result<Option<Record>> {
        if let Some(record) = self.pending.take() {
            return Ok(Some(record));
        }
        match &mut self.source {
            Source::Lines(input) => {
                let line = read_line(input.as_mut())?;
                self.consumed += line.as_ref().map_or(0, |l| l.len() as u64 + 1);
                Ok(line.map(Record::Line))
            }
            Source::Csv { reader, columns, width } => {
                let row = next_row(reader, columns, *width)?;
                self.consumed = reader.position().byte();
                Ok(row)
            }
        }
    }

    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// `record` comes out of `read` again first (`--resume`'s cut-off last answer).
    pub fn push_back(&mut self, record: Record) {
        self.pending = Some(record);
    }

    /// The id its answer carries.
    pub fn id(&self, record: &Record) -> Option<Value> {
        match record {
            Record::Line(line) => {
                field(&serde_json::from_slice(line).ok()?, self.id_field.as_deref(), "id").cloned()
            }
            Record::Row(row) => row.id.clone().map(Value::String),
        }
    }
}

/// The value at `pointer` (a JSON pointer, or a top-level name), else at `default`.
pub fn field<'a>(item: &'a Value, pointer: Option<&str>, default: &str) -> Option<&'a Value> {
    match pointer {
        Some(pointer) if pointer.starts_with('/') => item.pointer(pointer),
        Some(name) => item.get(name),
        None => item.get(default),
    }
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

fn decompress(
    mut input: Box<dyn BufRead + Send>,
    asked: Option<Compression>,
) -> io::Result<(Box<dyn BufRead + Send>, bool)> {
    let compression = match asked {
        Some(compression) => compression,
        None => {
            let start = input.fill_buf()?;
            match () {
                _ if start.starts_with(GZIP) => Compression::Gzip,
                _ if start.starts_with(ZSTD) => Compression::Zstd,
                _ => Compression::None,
            }
        }
    };
    Ok(match compression {
        Compression::None => (input, false),
        // Multi-member: `cat a.gz b.gz` and pigz's output are one stream.
        Compression::Gzip => {
            (Box::new(BufReader::with_capacity(1 << 16, flate2::bufread::MultiGzDecoder::new(input))), true)
        }
        Compression::Zstd => {
            (Box::new(BufReader::with_capacity(1 << 16, zstd::Decoder::with_buffer(input)?)), true)
        }
    })
}

fn csv_source(input: Box<dyn BufRead + Send>, fields: &Fields) -> io::Result<Source> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(Bounded {
        inner: input,
        read: 0,
        start: Cell::new(0),
    });
    let header = reader.byte_headers().map_err(csv_error)?.clone();
    // Spreadsheets start their CSV exports with a byte order mark.
    let name = |h: &[u8]| String::from_utf8_lossy(h).trim_start_matches('\u{feff}').trim().to_string();
    let names: Vec<String> = header.iter().map(name).collect();
    let find = |name: &str, option: &str| {
        names.iter().position(|n| n == name).ok_or_else(|| {
            refused(format!(
                "the CSV header has no column {name:?} (it has {names:?}); choose one with {option}"
            ))
        })
    };
    let columns = Columns {
        text: find(fields.text.as_deref().unwrap_or("text"), "--text-column")?,
        id: match fields.id.as_deref() {
            Some(id) => Some(find(id, "--id-column")?),
            None => names.iter().position(|n| n == "id"),
        },
        second: fields.second.as_deref().map(|s| find(s, "--second-column")).transpose()?,
    };
    reader.get_ref().start.set(reader.get_ref().read);
    Ok(Source::Csv { reader, columns, width: names.len() })
}

/// A row with the wrong number of fields or a field that is not UTF-8 is an error in place;
/// only a failing read (or a row past the size limit) ends the input.
fn next_row(
    reader: &mut csv::Reader<Bounded>,
    columns: &Columns,
    width: usize,
) -> io::Result<Option<Record>> {
    let mut record = csv::ByteRecord::new();
    let more = reader.read_byte_record(&mut record).map_err(csv_error)?;
    reader.get_ref().start.set(reader.get_ref().read);
    if !more {
        return Ok(None);
    }
    let text = |i: usize| {
        let field = record.get(i).unwrap_or_default();
        String::from_utf8(field.to_vec()).map_err(|_| format!("CSV field {} is not UTF-8", i + 1))
    };
    let id = columns.id.and_then(|i| text(i).ok());
    let fields = match record.len() == width {
        false => Err(format!("the CSV row has {} fields, the header {width}", record.len())),
        true => text(columns.text).and_then(|t| Ok((t, columns.second.map(text).transpose()?))),
    };
    Ok(Some(Record::Row(Row { id, fields })))
}

/// Keeps an unterminated quote from reading the rest of a file into one row: past the API's
/// body limit (plus the CSV reader's own buffer) since the row began, reading fails.
struct Bounded {
    inner: Box<dyn BufRead + Send>,
    read: u64,
    start: Cell<u64>,
}

const MAX_ROW_BYTES: u64 = MAX_BODY_BYTES as u64 + (64 << 10);

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read - self.start.get() > MAX_ROW_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a CSV row is over {MAX_BODY_BYTES} bytes (a quote that never closes?)"),
            ));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn csv_error(e: csv::Error) -> io::Error {
    let line = e.position().map(|p| format!(" (line {})", p.line())).unwrap_or_default();
    match e.into_kind() {
        csv::ErrorKind::Io(e) => io::Error::new(e.kind(), format!("{e}{line}")),
        other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}{line}")),
    }
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(bytes: Vec<u8>, format: Format, fields: Fields) -> io::Result<Vec<Record>> {
        let mut records = Records::open(Box::new(io::Cursor::new(bytes)), None, &format, &fields)?;
        std::iter::from_fn(|| records.read().transpose()).collect()
    }

    fn row(id: Option<&str>, text: &str) -> Record {
        Record::Row(Row { id: id.map(String::from), fields: Ok((text.into(), None)) })
    }

    #[test]
    fn gzip_and_zstd_are_known_by_their_first_bytes() {
        let plain = b"{\"text\":\"a\"}\n{\"text\":\"b\"}\n".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        io::Write::write_all(&mut gz, &plain).unwrap();
        let zst = zstd::encode_all(&plain[..], 3).unwrap();
        let want =
            vec![Record::Line(b"{\"text\":\"a\"}".to_vec()), Record::Line(b"{\"text\":\"b\"}".to_vec())];
        for bytes in [plain.clone(), gz.finish().unwrap(), zst] {
            assert_eq!(records(bytes, Format::Jsonl, Fields::default()).unwrap(), want);
        }
    }

    #[test]
    fn csv_rows_follow_rfc_4180_quoting_and_a_bad_row_is_an_error_in_its_place() {
        let csv =
            "id,user,text\n1,ana,\"hola, \"\"mundo\"\"\nadiós\"\n2,x\n3,b,\"bien\"\n".as_bytes().to_vec();
        let got = records(csv, Format::Csv, Fields::default()).unwrap();
        assert_eq!(got[0], row(Some("1"), "hola, \"mundo\"\nadiós"));
        let Record::Row(bad) = &got[1] else { panic!() };
        assert_eq!(
            (bad.id.as_deref(), bad.fields.clone()),
            (Some("2"), Err("the CSV row has 2 fields, the header 3".into()))
        );
        assert_eq!(got[2], row(Some("3"), "bien"));
    }

    #[test]
    fn csv_columns_are_chosen_by_name_and_a_missing_one_is_refused() {
        let csv = "\u{feff}tweet_id,full_text,target\n7,hola,ana\n".as_bytes().to_vec();
        let fields = Fields {
            text: Some("full_text".into()),
            id: Some("tweet_id".into()),
            second: Some("target".into()),
        };
        let got = records(csv.clone(), Format::Csv, fields).unwrap();
        assert_eq!(
            got,
            [Record::Row(Row { id: Some("7".into()), fields: Ok(("hola".into(), Some("ana".into()))) })]
        );
        let error = records(csv, Format::Csv, Fields::default()).err().unwrap().to_string();
        assert!(error.contains("no column \"text\"") && error.contains("--text-column"), "{error}");
    }

    #[test]
    fn a_quote_that_never_closes_ends_the_input_with_an_error_not_a_huge_row() {
        let csv = format!("id,text\n1,\"{}\n", "x\n".repeat(MAX_BODY_BYTES));
        let error = records(csv.into_bytes(), Format::Csv, Fields::default()).unwrap_err().to_string();
        assert!(error.contains("a quote that never closes"), "{error}");
    }

    #[test]
    fn an_id_is_read_at_its_pointer() {
        let records = Records {
            source: Source::Lines(Box::new(io::empty())),
            pending: None,
            id_field: Some("/meta/id".into()),
            decompressed: false,
            consumed: 0,
        };
        assert_eq!(records.id(&Record::Line(br#"{"meta":{"id":9},"id":1}"#.to_vec())), Some(Value::from(9)));
        assert_eq!(
            field(&serde_json::json!({"full_text": "a"}), Some("full_text"), "text"),
            Some(&Value::from("a"))
        );
    }
}
