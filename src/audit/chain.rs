//! The audit file's hash chain and signed checkpoints (format 1), so that a
//! copy of the file anywhere can be checked for alteration
//! (`fedgate audit verify`), by fedgate or by a verifier of one's own:
//!
//! - every line is one JSON object ending in `"seq":N,"prev":"H"`: `seq`
//!   counts lines from 1 (it goes on across files and restarts), `prev` is
//!   the lower-case hex SHA-256 of the previous line's bytes exactly as
//!   written, without its newline (64 zeros before the first line);
//! - a **checkpoint** line `{"checkpoint":1,"time":T,"key":K,"alg":A,
//!   "signature":S,"seq":N,"prev":H}` signs, with fedgate's SAML signing key
//!   (`K`: the SHA-256 thumbprint, hex, of its certificate; `A`:
//!   `rsa-sha256` or `ecdsa-sha256`), the ASCII text
//!   `fedgate-audit-checkpoint/1 {N} {H} {T}` (base64 `S`; ECDSA as r‖s):
//!   so it anchors every line before it. Checkpoints are written every
//!   `audit.checkpoint_secs` when events were written since the last one,
//!   and at shutdown.
//!
//! What is reported: the first line that does not parse or whose hash the
//! next line contradicts (altered), a `seq` that jumps (lines missing) or
//! goes back (reordered), a checkpoint whose signature does not hold or
//! whose key is unknown (forged), a last line without its newline
//! (truncated), and the lines after the last good checkpoint (unanchored:
//! chained, not yet signed).

use base64::Engine;
use serde::Serialize;

use crate::trust::certs::{SigAlg, TrustedCert};
use crate::trust::signing::SigningKey;

/// `prev` before the first line of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The lower-case hex SHA-256 of a line's bytes.
pub fn line_hash(line: &str) -> String {
    crate::util::hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, line.as_bytes()).as_ref(),
    )
}

/// What a checkpoint signs.
pub fn checkpoint_message(seq: u64, prev: &str, time: &str) -> String {
    format!("fedgate-audit-checkpoint/1 {seq} {prev} {time}")
}

/// Where the chain stands: the last line's `seq` and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

impl Head {
    /// The head after the last complete line of `tail` (the end of an
    /// existing file), if that line carries a `seq`.
    pub fn after(tail: &str) -> Option<Head> {
        let last = tail.trim_end_matches('\n').rsplit('\n').next()?;
        let v: serde_json::Value = serde_json::from_str(last).ok()?;
        Some(Head {
            seq: v.get("seq")?.as_u64()?,
            hash: line_hash(last),
        })
    }

    /// `value` (a JSON object) as the next line: `seq` and `prev` appended.
    pub fn chain(&mut self, value: &impl Serialize) -> Option<String> {
        self.chain_text(&serde_json::to_string(value).ok()?)
    }

    /// [`Head::chain`] for an object already serialised (`json`).
    pub fn chain_text(&mut self, json: &str) -> Option<String> {
        let text = json.strip_suffix('}')?;
        let sep = if text.ends_with('{') { "" } else { "," };
        let line = format!(
            "{text}{sep}\"seq\":{},\"prev\":\"{}\"}}",
            self.seq + 1,
            self.hash
        );
        self.seq += 1;
        self.hash = line_hash(&line);
        Some(line)
    }

    /// The checkpoint line anchoring everything so far, signed with `key`.
    pub fn checkpoint(&mut self, key: &SigningKey, time: &str) -> Result<String, String> {
        let next = self.seq + 1;
        let message = checkpoint_message(next, &self.hash, time);
        let signature = key.sign(message.as_bytes()).map_err(|e| e.to_string())?;
        let alg = match key.algorithm() {
            SigAlg::EcdsaSha256 => "ecdsa-sha256",
            _ => "rsa-sha256",
        };
        let body = serde_json::json!({
            "checkpoint": 1,
            "time": time,
            "key": key.cert.thumbprint_sha256,
            "alg": alg,
            "signature": base64::engine::general_purpose::STANDARD.encode(signature),
        });
        self.chain(&body)
            .ok_or_else(|| "checkpoint encoding".to_string())
    }
}

/// One finding of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `altered`, `gap`, `reordered`, `forged`, `key_unknown`, `truncated`.
    pub kind: &'static str,
    /// The file and 1-based line.
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub lines: usize,
    pub events: usize,
    pub checkpoints: usize,
    /// The `seq` the last good checkpoint anchors up to (inclusive of the
    /// checkpoint itself), if any.
    pub anchored_through: Option<u64>,
    /// Events after the last good checkpoint: chained, not signed yet.
    pub unanchored: usize,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check files of one chain, in order, with fedgate's certificates
/// (current and former: a checkpoint names its key by thumbprint). Stops at
/// the first break in the chain (what follows cannot be trusted to be
/// where it was).
pub fn verify(files: &[(String, String)], certs: &[TrustedCert]) -> Report {
    let mut r = Report::default();
    let mut head: Option<Head> = None;
    let mut since_checkpoint = 0usize;
    for (name, text) in files {
        let truncated = !text.is_empty() && !text.ends_with('\n');
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let at = i + 1;
            let problem = |kind: &'static str, message: String| Problem {
                kind,
                file: name.clone(),
                line: at,
                message,
            };
            r.lines += 1;
            if truncated && i + 1 == lines.len() {
                r.problems.push(problem(
                    "truncated",
                    "the last line is cut off (no newline): the file was truncated".into(),
                ));
                return finish(r, since_checkpoint);
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                r.problems.push(problem(
                    "altered",
                    "not a JSON object: the line was altered".into(),
                ));
                return finish(r, since_checkpoint);
            };
            let (Some(seq), Some(prev)) = (
                v.get("seq").and_then(|s| s.as_u64()),
                v.get("prev").and_then(|p| p.as_str()),
            ) else {
                r.problems.push(problem(
                    "altered",
                    "no seq/prev: not a line of the chain".into(),
                ));
                return finish(r, since_checkpoint);
            };
            if head.is_none() && seq == 1 && prev != GENESIS {
                r.problems.push(problem(
                    "altered",
                    "the first line of the chain does not start from the genesis hash".into(),
                ));
                return finish(r, since_checkpoint);
            }
            if let Some(h) = &head {
                if seq <= h.seq {
                    r.problems.push(problem(
                        "reordered",
                        format!("seq {seq} after {}: lines are out of order", h.seq),
                    ));
                    return finish(r, since_checkpoint);
                }
                if seq > h.seq + 1 {
                    // Missing, or only moved further down the file?
                    let want = h.seq + 1;
                    let later = lines[i + 1..].iter().any(|l| {
                        serde_json::from_str::<serde_json::Value>(l)
                            .ok()
                            .and_then(|v| v.get("seq").and_then(|s| s.as_u64()))
                            == Some(want)
                    });
                    r.problems.push(if later {
                        problem(
                            "reordered",
                            format!("seq {seq} follows {}: seq {want} comes later: lines are out of order", h.seq),
                        )
                    } else {
                        problem(
                            "gap",
                            format!(
                                "seq {seq} follows {}: {} line(s) missing",
                                h.seq,
                                seq - h.seq - 1
                            ),
                        )
                    });
                    return finish(r, since_checkpoint);
                }
                if prev != h.hash {
                    let mut p = problem(
                        "altered",
                        "the line before was altered: its hash is not the one this line records"
                            .into(),
                    );
                    if at > 1 {
                        p.line = at - 1;
                    }
                    r.problems.push(p);
                    return finish(r, since_checkpoint);
                }
            }
            if v.get("checkpoint").is_some() {
                match check_signature(&v, seq, prev, certs) {
                    Ok(()) => {
                        r.checkpoints += 1;
                        r.anchored_through = Some(seq);
                        since_checkpoint = 0;
                    }
                    Err((kind, message)) => {
                        r.problems.push(problem(kind, message));
                        return finish(r, since_checkpoint);
                    }
                }
            } else {
                r.events += 1;
                since_checkpoint += 1;
            }
            head = Some(Head {
                seq,
                hash: line_hash(line),
            });
        }
    }
    finish(r, since_checkpoint)
}

fn finish(mut r: Report, since_checkpoint: usize) -> Report {
    r.unanchored = since_checkpoint;
    r
}

fn check_signature(
    v: &serde_json::Value,
    seq: u64,
    prev: &str,
    certs: &[TrustedCert],
) -> Result<(), (&'static str, String)> {
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default();
    let (time, key, alg) = (field("time"), field("key"), field("alg"));
    let alg = match alg {
        "rsa-sha256" => SigAlg::RsaSha256,
        "ecdsa-sha256" => SigAlg::EcdsaSha256,
        other => return Err(("forged", format!("checkpoint algorithm {other:?} unknown"))),
    };
    let Some(cert) = certs.iter().find(|c| c.thumbprint_sha256 == key) else {
        return Err((
            "key_unknown",
            format!("the checkpoint is signed by key {key:?}, not one given (--cert)"),
        ));
    };
    let signature = base64::engine::general_purpose::STANDARD
        .decode(field("signature"))
        .map_err(|_| {
            (
                "forged",
                "the checkpoint's signature is not base64".to_string(),
            )
        })?;
    let message = checkpoint_message(seq, prev, time);
    if cert.verify(alg, message.as_bytes(), &signature) == Some(true) {
        Ok(())
    } else {
        Err((
            "forged",
            "the checkpoint's signature does not verify: forged or altered".into(),
        ))
    }
}
