//! "Did you mean" hints for misspelt names in operator files: the closest known name by
//! edit distance, if it is close enough to be a plausible typo.

/// The known name nearest to `name`, when at most a third of its characters differ.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|k| (distance(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_only() {
        let known = ["greeting", "main_menu", "goodbye"];
        assert_eq!(closest("greting", known), Some("greeting"));
        assert_eq!(closest("main_mneu", known), Some("main_menu"));
        assert_eq!(closest("transfer", known), None);
        assert_eq!(distance("社保", "社宝"), 1);
    }
}
