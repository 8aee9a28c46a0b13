//! How each answer is written: a JSON line (what `POST /predict` answers, with the input's id),
//! or a CSV row (`id,output,<one column per label>,error`) under a header, for spreadsheets.

use std::io;

use serde_json::Value;

use super::{Answer, Line};
use crate::model::{self, Model};
use crate::model_dir::Head;
use crate::postprocess::Output;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum OutputFormat {
    #[default]
    Jsonl,
    Csv,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jsonl" => Ok(Self::Jsonl),
            "csv" => Ok(Self::Csv),
            _ => Err(format!("--output-format {s:?}: expected jsonl or csv")),
        }
    }
}

/// The CSV header, or why the model's answers do not fit a row (a word task labels every word).
pub fn header(format: OutputFormat, model: &Model) -> io::Result<Option<String>> {
    if format == OutputFormat::Jsonl {
        return Ok(None);
    }
    if let Head::Words { .. } = model.spec.head {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--output-format csv: the {} model labels every word, which a row cannot hold; write JSON Lines",
                model.spec.task
            ),
        ));
    }
    let labels = model.spec.labels.iter().map(String::as_str);
    Ok(Some(row(["id", "output"].into_iter().chain(labels).chain(["error"]))))
}

pub fn line(format: OutputFormat, id: Option<&Value>, answer: &Answer, labels: &[String]) -> String {
    match format {
        OutputFormat::Jsonl => serde_json::to_string(&Line { id, answer }).expect("answers serialise"),
        OutputFormat::Csv => csv_line(id, answer, labels),
    }
}

/// A string id as it is, any other JSON id as JSON; a multi-label output's labels joined by `|`.
fn csv_line(id: Option<&Value>, answer: &Answer, labels: &[String]) -> String {
    let id = match id {
        None => String::new(),
        Some(Value::String(id)) => id.clone(),
        Some(other) => other.to_string(),
    };
    let mut fields = vec![id];
    match answer {
        Answer::Prediction(model::Answer::Text(p)) => {
            fields.push(match &p.output {
                Output::Label(label) => label.clone(),
                Output::Labels(chosen) => chosen.join("|"),
            });
            fields.extend(p.probas.0.iter().map(|(_, p)| p.to_string()));
            fields.push(String::new());
        }
        Answer::Prediction(model::Answer::Words(_)) => unreachable!("header() refuses word tasks"),
        Answer::Error { error } => {
            fields.push(String::new());
            fields.extend(labels.iter().map(|_| String::new()));
            fields.push(format!("{}: {}", error.code, error.message));
        }
    }
    row(fields.iter().map(String::as_str))
}

/// One CSV record, quoted where RFC 4180 needs it, without its line end.
fn row<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut writer =
        csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    writer.write_record(fields).expect("writing to memory does not fail");
    let mut bytes = writer.into_inner().expect("writing to memory does not fail");
    bytes.pop();
    String::from_utf8(bytes).expect("the fields are UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use crate::postprocess::predict;

    #[test]
    fn a_csv_row_holds_the_id_output_probabilities_and_error_quoted_where_needed() {
        let labels: Vec<String> = ["NEG", "NEU", "POS"].map(String::from).to_vec();
        let answer =
            Answer::Prediction(model::Answer::Text(predict(&[0.0, 0.0, 0.0], &labels, false, false)));
        let id = Value::from("a \"b\", c");
        assert_eq!(
            csv_line(Some(&id), &answer, &labels),
            "\"a \"\"b\"\", c\",NEG,0.33333334,0.33333334,0.33333334,"
        );
        let error = Answer::Error { error: ApiError::InvalidRequest("no, text".into()).detail() };
        assert_eq!(csv_line(Some(&Value::from(7)), &error, &labels), "7,,,,,\"invalid_request: no, text\"");
    }
}
