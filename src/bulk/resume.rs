//! `--resume`: which lines of an earlier, interrupted run to keep. A line is kept only when it is
//! this program's answer to the input record at the same place (an answer or an error in place,
//! with that line's `id`), so a file that is not our output, or the output of another input, is
//! refused untouched rather than trusted or cut.

use std::io::{BufRead, Read};

use serde_json::Value;

use super::records::{Record, Records};
use crate::config::MAX_BODY_BYTES;

/// An answer line is the input's id (a line of up to `MAX_BODY_BYTES`) plus the answer (a
/// 10,000-character text spelt out at most a few times): a "line" longer than this is not ours.
const MAX_ANSWER_BYTES: u64 = 4 * MAX_BODY_BYTES as u64;

/// What an earlier run left: its whole lines that answer the input's first lines, where they
/// end, and the input line after them when a cut-off answer to it follows (read here, to be
/// answered again).
#[derive(Debug, PartialEq)]
pub struct Kept {
    pub lines: u64,
    pub end: u64,
    pub cut: Option<Record>,
}

/// Checks `output` line by line against `input`, which is left after the kept lines' inputs.
pub fn check(output: &mut dyn BufRead, input: &mut Records) -> Result<Kept, String> {
    let mut kept = Kept { lines: 0, end: 0, cut: None };
    loop {
        let mut line = Vec::new();
        let n = Read::take(&mut *output, MAX_ANSWER_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read it: {e}"))?;
        if n == 0 {
            return Ok(kept);
        }
        let place = kept.lines + 1;
        let whole = line.last() == Some(&b'\n');
        if !whole && n as u64 > MAX_ANSWER_BYTES {
            return Err(format!("line {place} is longer than any answer"));
        }
        let Some(question) = input.read().map_err(|e| format!("cannot read the input: {e}"))? else {
            return Err(format!("it has more lines than the input ({place} or more)"));
        };
        if whole {
            line.pop();
            answers(&line, input.id(&question)).map_err(|why| format!("line {place} {why}"))?;
            kept.lines += 1;
            kept.end += n as u64;
        } else {
            // Only the last line can be cut (a run killed mid-write): it is written again.
            if !starts_an_answer(&line, input.id(&question)) {
                return Err(format!("its last line (line {place}, no newline) is not an answer"));
            }
            kept.cut = Some(question);
            return Ok(kept);
        }
    }
}

/// Whether `line` is what bulk scoring writes for an input record whose id is `want`: an object
/// with an answer (`probas`) or an error in place, and that `id` exactly when there is one.
fn answers(line: &[u8], want: Option<Value>) -> Result<(), String> {
    let Ok(Value::Object(line)) = serde_json::from_slice::<Value>(line) else {
        return Err("is not a JSON object".into());
    };
    if !line.contains_key("probas") && line.get("error").and_then(|e| e.get("code")).is_none() {
        return Err("is neither an answer nor an error".into());
    }
    let got = line.get("id");
    match got == want.as_ref() {
        true => Ok(()),
        false => Err(format!(
            "has id {} but the input line has {}",
            got.map_or("none".into(), Value::to_string),
            want.map_or("none".into(), |v| v.to_string())
        )),
    }
}

/// Whether a line with no newline is an answer to the record with id `want`, whole or cut off:
/// it must begin as the answer to that record begins (`{"id":<its id>` when it has one).
fn starts_an_answer(line: &[u8], want: Option<Value>) -> bool {
    if answers(line, want.clone()).is_ok() {
        return true;
    }
    let starts = match want {
        Some(id) => vec![format!("{{\"id\":{id}")],
        // The first field of an answer, of a word-labelling answer, of an error.
        None => vec!["{\"output\":".into(), "{\"sentence\":".into(), "{\"error\":".into()],
    };
    starts.iter().any(|start| {
        let n = line.len().min(start.len());
        !line.is_empty() && line[..n] == start.as_bytes()[..n]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#""output":"POS","probas":{"NEG":0.1,"NEU":0.1,"POS":0.8},"truncated":false}"#;

    fn check_str(output: &str, input: &str) -> Result<Kept, String> {
        let mut input = Records::lines(Box::new(std::io::Cursor::new(input.as_bytes().to_vec())));
        check(&mut output.as_bytes(), &mut input)
    }

    #[test]
    fn answers_with_the_inputs_ids_are_kept_and_a_cut_last_line_is_redone() {
        let input = "{\"id\":1,\"text\":\"a\"}\nnot json\n{\"text\":\"c\"}\n{\"id\":\"x\",\"text\":\"d\"}\n";
        let output = format!(
            "{{\"id\":1,{ANSWER}\n{{\"error\":{{\"code\":\"invalid_json\",\"message\":\"m\"}}}}\n{{{ANSWER}\n{{\"id\":\"x\",\"outp"
        );
        let kept = check_str(&output, input).unwrap();
        assert_eq!((kept.lines, kept.cut), (3, Some(Record::Line(br#"{"id":"x","text":"d"}"#.to_vec()))));
        assert_eq!(kept.end as usize, output.rfind('\n').unwrap() + 1);
    }

    #[test]
    fn anything_else_is_refused() {
        let input = "{\"id\":1,\"text\":\"a\"}\n{\"id\":2,\"text\":\"b\"}\n";
        let refusal = |output: &str| check_str(output, input).unwrap_err();
        assert!(refusal("my notes\n").contains("line 1 is not a JSON object"));
        assert!(refusal("{\"id\":1,\"x\":2}\n").contains("neither an answer nor an error"));
        assert!(refusal(&format!("{{\"id\":2,{ANSWER}\n")).contains("has id 2 but the input line has 1"));
        assert!(refusal(&format!("{{{ANSWER}\n")).contains("has id none"));
        let three = format!("{{\"id\":1,{ANSWER}\n{{\"id\":2,{ANSWER}\n{{\"id\":3,{ANSWER}\n");
        assert!(refusal(&three).contains("more lines than the input"));
        assert!(refusal(&"x".repeat(100_000)).contains("no newline"));
        assert!(refusal("{\"id\":2").contains("no newline"), "a cut answer to another line");
    }
}
