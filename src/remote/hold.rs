//! `up - --hold`: the far side of a two-phase commit across sites. After
//! apply and readiness, say `READY` and wait for the driver's verdict on
//! stdin (the line after the bundle's `@@ end`): `COMMIT` keeps the
//! changes; `ABORT`, anything else, or EOF (the driver or its ssh is gone)
//! rolls them back.

use std::io::BufRead;

/// Exit status of an `up --hold` that was told to roll back.
pub const ABORTED: i32 = 3;

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Commit,
    /// Roll back; why (for the message).
    Abort(String),
}

/// The verdict line as read from `r`.
pub fn verdict(r: &mut impl BufRead) -> Verdict {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => Verdict::Abort("stdin closed before COMMIT".into()),
        Ok(_) => match line.trim_end_matches(['\n', '\r']) {
            "COMMIT" => Verdict::Commit,
            "ABORT" => Verdict::Abort("ABORT".into()),
            other => Verdict::Abort(format!("{other:?} instead of COMMIT")),
        },
        Err(e) => Verdict::Abort(format!("reading stdin: {e}")),
    }
}

/// Say READY (flushed: the driver waits for it) and wait for the verdict.
pub fn wait() -> Verdict {
    crate::out::write("READY\n");
    verdict(&mut std::io::stdin().lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commit_commits() {
        let v = |s: &str| verdict(&mut std::io::Cursor::new(s.as_bytes().to_vec()));
        assert_eq!(v("COMMIT\n"), Verdict::Commit);
        assert_eq!(v("COMMIT"), Verdict::Commit);
        assert_eq!(v("ABORT\n"), Verdict::Abort("ABORT".into()));
        assert!(matches!(v(""), Verdict::Abort(w) if w.contains("closed")));
        assert!(matches!(v("commit\n"), Verdict::Abort(w) if w.contains("instead")));
    }
}
