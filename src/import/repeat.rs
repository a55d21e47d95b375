//! Finding repeated structure: units of script text (one namespace's lines,
//! one `dnat` line) that differ only in numbers which grow in step become
//! one `for` loop with the numbers written as `${i + c}`.
//!
//! Works on the text itself, so a loop reproduces exactly the strings the
//! units had: "172.17.0.9" and "172.17.0.10" are the same shape, whatever
//! the number means. A number with a leading zero cannot vary (`${i}` would
//! drop the zero); 255 → 256 breaks a run because the text would not match.

/// A unit cut at its numbers: the text around them and the numbers.
#[derive(Debug, PartialEq, Eq)]
struct Cut {
    skel: Vec<String>,
    /// (value, inside a string literal, written with a leading zero)
    nums: Vec<(i64, bool, bool)>,
    /// the numbers as written ("00" stays "00" where it does not vary)
    raw: Vec<String>,
}

fn cut(text: &str) -> Option<Cut> {
    let mut skel = vec![String::new()];
    let mut nums = Vec::new();
    let mut raw = Vec::new();
    let mut in_str = false;
    let mut prev: Option<char> = None;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str && matches!(c, '\\' | '`' | '$') {
            // escapes and interpolation would not survive the rewrite
            return None;
        }
        // digits inside a name (v12) are part of it
        let ident = prev.is_some_and(|p| p.is_ascii_alphanumeric() || p == '_');
        if c.is_ascii_digit() && (in_str || !ident) {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            let v: i64 = run.parse().ok()?;
            nums.push((v, in_str, run.len() > 1 && run.starts_with('0')));
            raw.push(run);
            skel.push(String::new());
            prev = Some('0');
            continue;
        }
        if c == '"' {
            in_str = !in_str;
        }
        skel.last_mut()?.push(c);
        prev = Some(c);
        i += 1;
    }
    Some(Cut { skel, nums, raw })
}

/// Units grouped: a lone unit, or a run that is one loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    One(usize),
    Loop {
        first: usize,
        len: usize,
        text: String,
    },
}

/// Group `units` (in order) into lone units and loops of at least
/// `min_run` units.
pub fn group(units: &[String], min_run: usize) -> Vec<Piece> {
    let cuts: Vec<Option<Cut>> = units.iter().map(|u| cut(u)).collect();
    let mut out = Vec::new();
    let mut s = 0;
    while s < units.len() {
        let len = run_len(&cuts, s);
        if len >= min_run.max(2)
            && let Some(Some(c0)) = cuts.get(s)
            && let Some(Some(c1)) = cuts.get(s + 1)
        {
            out.push(Piece::Loop {
                first: s,
                len,
                text: render_loop(c0, c1, len),
            });
            s += len;
        } else {
            out.push(Piece::One(s));
            s += 1;
        }
    }
    out
}

fn steps(a: &Cut, b: &Cut) -> Option<Vec<i64>> {
    if a.skel != b.skel || a.nums.len() != b.nums.len() {
        return None;
    }
    let d: Vec<i64> = a.nums.iter().zip(&b.nums).map(|(x, y)| y.0 - x.0).collect();
    // a zero-padded number must stay as it is
    let padded_moves = a.nums.iter().zip(&d).any(|(n, d)| n.2 && *d != 0);
    (!padded_moves && d.iter().any(|x| *x != 0)).then_some(d)
}

fn run_len(cuts: &[Option<Cut>], s: usize) -> usize {
    let (Some(Some(a)), Some(Some(b))) = (cuts.get(s), cuts.get(s + 1)) else {
        return 1;
    };
    let Some(d) = steps(a, b) else { return 1 };
    let mut len = 2;
    while let Some(Some(c)) = cuts.get(s + len) {
        let t = len as i64;
        let fits = c.skel == a.skel
            && c.nums.len() == a.nums.len()
            && c.nums
                .iter()
                .zip(&a.nums)
                .zip(&d)
                .all(|((x, y), d)| x.0 == y.0 + d * t && x.2 == y.2);
        if !fits {
            break;
        }
        len += 1;
    }
    len
}

/// `i`, `i + 1`, `i * 2 - 3`
fn expr(var: &str, mul: i64, off: i64) -> String {
    let base = if mul == 1 {
        var.to_string()
    } else {
        format!("{var} * {mul}")
    };
    match off {
        0 => base,
        o if o > 0 => format!("{base} + {o}"),
        o => format!("{base} - {}", -o),
    }
}

fn render_loop(a: &Cut, b: &Cut, len: usize) -> String {
    let d: Vec<i64> = a.nums.iter().zip(&b.nums).map(|(x, y)| y.0 - x.0).collect();
    // count with the first number that goes up by one, when there is one
    let lead = d.iter().position(|x| *x == 1);
    let (var, from) = match lead {
        Some(j) => ("i", a.nums[j].0),
        None => ("k", 0),
    };
    let mut body = String::new();
    for (j, part) in a.skel.iter().enumerate() {
        body.push_str(part);
        let Some((v, in_str, _)) = a.nums.get(j) else {
            continue;
        };
        if d[j] == 0 {
            body.push_str(&a.raw[j]);
            continue;
        }
        // value = v + d*(var - from)
        let e = expr(var, d[j], v - d[j] * from);
        if *in_str {
            body.push_str(&format!("${{{e}}}"));
        } else if e.contains(' ') {
            body.push_str(&format!("({e})"));
        } else {
            body.push_str(&e);
        }
    }
    // strings with an interpolation become template literals
    let body = templates(&body);
    let mut out = format!("for {var} in {from}..{} {{\n", from + len as i64);
    for line in body.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out.push_str("}\n");
    out
}

/// `"zc${i}"` → `` `zc${i}` ``; strings without `${` stay as they are.
fn templates(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let lit = &after[..close];
        if lit.contains("${") {
            out.push_str(&format!("`{lit}`"));
        } else {
            out.push_str(&format!("\"{lit}\""));
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Namespace names in the order a person counts them: ns2 before ns10.
pub fn natural_key(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            if !num.is_empty() {
                out.push((std::mem::take(&mut text), num.parse().unwrap_or(u64::MAX)));
                num.clear();
            }
            text.push(c);
        }
    }
    out.push((text, num.parse().unwrap_or(0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(i: u32) -> String {
        format!(
            "let n = netns(\"ns{i}\");\nlet v = veth(\"h{i}\", n, \"eth0\");\nv.peer.addr(\"10.0.0.{}/24\").up();\n",
            i + 1
        )
    }

    #[test]
    fn a_sequence_becomes_one_loop() {
        let units: Vec<String> = (1..=50).map(unit).collect();
        let g = group(&units, 3);
        assert_eq!(g.len(), 1, "{g:?}");
        let Piece::Loop { text, len, .. } = &g[0] else {
            panic!("{g:?}")
        };
        assert_eq!(*len, 50);
        assert_eq!(
            text,
            "for i in 1..51 {\n    let n = netns(`ns${i}`);\n    let v = veth(`h${i}`, n, \"eth0\");\n    v.peer.addr(`10.0.0.${i + 1}/24`).up();\n}\n"
        );
    }

    #[test]
    fn breaks_where_the_numbers_stop_growing_in_step() {
        let mut units: Vec<String> = (1..=4).map(unit).collect();
        units.push(unit(9));
        units.push("other();\n".into());
        let g = group(&units, 3);
        assert!(matches!(g[0], Piece::Loop { len: 4, .. }), "{g:?}");
        assert_eq!(&g[1..], &[Piece::One(4), Piece::One(5)]);
    }

    #[test]
    fn two_are_not_a_loop_and_zero_padding_stays() {
        assert_eq!(
            group(&[unit(1), unit(2)], 3),
            vec![Piece::One(0), Piece::One(1)]
        );
        let padded: Vec<String> = (1..=5).map(|i| format!("netns(\"ns0{i}\");\n")).collect();
        assert!(group(&padded, 3).iter().all(|p| matches!(p, Piece::One(_))));
    }

    #[test]
    fn numbers_that_stay_are_kept_as_written() {
        let units: Vec<String> = (1..=3)
            .map(|i| format!("v.addr(\"fd00:9::{i}/64\");\n"))
            .collect();
        let Piece::Loop { text, .. } = &group(&units, 3)[0] else {
            panic!("no loop")
        };
        assert_eq!(text, "for i in 1..4 {\n    v.addr(`fd00:9::${i}/64`);\n}\n");
    }

    #[test]
    fn digits_of_variable_names_are_not_numbers() {
        // `let v1${i}` is no Rhai: units that differ in a name stay apart
        let units: Vec<String> = (11..=13)
            .map(|i| format!("let v{i} = netns(\"a{i}\");\n"))
            .collect();
        assert!(group(&units, 3).iter().all(|p| matches!(p, Piece::One(_))));
    }

    #[test]
    fn dnat_ports_and_targets() {
        let units: Vec<String> = (0..100)
            .map(|k| format!("dnat({}, \"172.17.0.9:{}\");\n", 30000 + k, 80 + 2 * k))
            .collect();
        let g = group(&units, 3);
        let Piece::Loop { text, .. } = &g[0] else {
            panic!("{g:?}")
        };
        assert_eq!(
            text,
            "for i in 30000..30100 {\n    dnat(i, `172.17.0.9:${i * 2 - 59920}`);\n}\n"
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["ns10", "ns2", "ns1", "a"];
        v.sort_by_key(|s| natural_key(s));
        assert_eq!(v, ["a", "ns1", "ns2", "ns10"]);
    }
}
