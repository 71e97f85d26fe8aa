//! A line diff of two configurations, in unified format (`diff -u`), for
//! `fedgate config diff` and the audit event of every configuration change.
//!
//! The lines both texts start and end with are skipped first; the middle
//! is aligned by a longest common subsequence while it is small (configs
//! are), and shown as all removed then all added past [`ALIGN_CELLS`], so
//! the work stays bounded whatever the two texts are.

/// Past this many cells (lines of the old middle × of the new), the middle
/// is not aligned.
const ALIGN_CELLS: usize = 4_000_000;

/// Lines of context around each change.
const CONTEXT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Removed,
    Added,
}

/// The differences between `old` and `new`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// The unified diff (empty when the texts have the same lines).
    pub text: String,
    pub added: usize,
    pub removed: usize,
}

/// `old` → `new` as a unified diff with `---`/`+++` headers naming them.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> Diff {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = align(&a, &b);
    let added = ops.iter().filter(|(o, _, _)| *o == Op::Added).count();
    let removed = ops.iter().filter(|(o, _, _)| *o == Op::Removed).count();
    if added == 0 && removed == 0 {
        return Diff::default();
    }
    let mut text = format!("--- {old_name}\n+++ {new_name}\n");
    // Hunks: runs of changes with CONTEXT lines around, merged when close.
    let changed: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].0 != Op::Same).collect();
    let mut i = 0;
    while i < changed.len() {
        let start = changed[i].saturating_sub(CONTEXT);
        let mut end = changed[i];
        while i + 1 < changed.len() && changed[i + 1] <= end + 2 * CONTEXT + 1 {
            i += 1;
            end = changed[i];
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        let (a0, b0) = (ops[start].1, ops[start].2);
        let a_len = hunk.iter().filter(|(o, _, _)| *o != Op::Added).count();
        let b_len = hunk.iter().filter(|(o, _, _)| *o != Op::Removed).count();
        text.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(a0, a_len),
            range(b0, b_len)
        ));
        for &(op, ai, bi) in hunk {
            let (mark, line) = match op {
                Op::Same => (' ', a[ai]),
                Op::Removed => ('-', a[ai]),
                Op::Added => ('+', b[bi]),
            };
            text.push(mark);
            text.push_str(line);
            text.push('\n');
        }
        i += 1;
    }
    Diff {
        text,
        added,
        removed,
    }
}

/// `diff -u`'s range: 1-based start and length (start 0 for an empty range
/// at the top).
fn range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        n => format!("{},{n}", start + 1),
    }
}

/// Every line as kept, removed or added, with its index in `a` and `b`
/// (for an added line, `.1` is where it goes in `a`; for a removed one,
/// `.2` where it was in `b`).
fn align(a: &[&str], b: &[&str]) -> Vec<(Op, usize, usize)> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<(Op, usize, usize)> = (0..prefix).map(|i| (Op::Same, i, i)).collect();
    if am.len().saturating_mul(bm.len()) <= ALIGN_CELLS {
        // lcs[i][j]: the longest common subsequence of am[i..] and bm[j..].
        let w = bm.len() + 1;
        let mut lcs = vec![0u32; (am.len() + 1) * w];
        for i in (0..am.len()).rev() {
            for j in (0..bm.len()).rev() {
                lcs[i * w + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < am.len() || j < bm.len() {
            if i < am.len() && j < bm.len() && am[i] == bm[j] {
                ops.push((Op::Same, prefix + i, prefix + j));
                i += 1;
                j += 1;
            } else if i < am.len() && (j == bm.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])
            {
                // Removals first on a tie, as `diff -u` shows them.
                ops.push((Op::Removed, prefix + i, prefix + j));
                i += 1;
            } else {
                ops.push((Op::Added, prefix + i, prefix + j));
                j += 1;
            }
        }
    } else {
        ops.extend((0..am.len()).map(|i| (Op::Removed, prefix + i, prefix)));
        ops.extend((0..bm.len()).map(|j| (Op::Added, prefix + am.len(), prefix + j)));
    }
    let (a_end, b_end) = (a.len() - suffix, b.len() - suffix);
    ops.extend((0..suffix).map(|k| (Op::Same, a_end + k, b_end + k)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_lines_no_diff() {
        let d = unified("a\nb\n", "a\nb", "x", "y");
        assert_eq!(d, Diff::default());
    }

    #[test]
    fn one_changed_line_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        let d = unified(old, new, "a", "b");
        assert_eq!((d.added, d.removed), (1, 1));
        assert_eq!(
            d.text,
            "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn far_apart_changes_make_two_hunks_and_additions_at_the_end() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new = old.replace("\n2\n", "\ntwo\n").replace("19\n", "") + "21\n";
        let d = unified(&old, &new, "a", "b");
        assert_eq!(d.text.matches("@@ -").count(), 2, "{}", d.text);
        assert_eq!((d.added, d.removed), (2, 2));
        assert!(d.text.contains("-19\n 20\n+21\n"), "{}", d.text);
        // `patch`-style check: applying the diff's lines rebuilds `new`.
        let rebuilt: Vec<&str> = align(
            &old.lines().collect::<Vec<_>>(),
            &new.lines().collect::<Vec<_>>(),
        )
        .iter()
        .filter(|(o, _, _)| *o != Op::Removed)
        .map(|&(o, ai, bi)| {
            if o == Op::Same {
                old.lines().nth(ai).unwrap_or_default()
            } else {
                new.lines().nth(bi).unwrap_or_default()
            }
        })
        .collect();
        assert_eq!(rebuilt, new.lines().collect::<Vec<_>>());
    }

    #[test]
    fn from_and_to_nothing() {
        let d = unified("", "a\nb\n", "a", "b");
        assert_eq!(d.text, "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n");
        let d = unified("a\n", "", "a", "b");
        assert_eq!(d.text, "--- a\n+++ b\n@@ -1 +0,0 @@\n-a\n");
    }
}
