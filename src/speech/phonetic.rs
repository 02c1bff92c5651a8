//! How alike two Mandarin syllables sound, for matching grammar words against transcripts
//! with recognition errors (射宝 for 社保, 落水 for 漏水). A syllable is split into
//! initial and final (tones ignored: the small model gets them wrong as often as not);
//! similarity comes from short tables of the confusions that recognisers and southern
//! speakers make: z/zh, n/l, f/h, front and back nasals, i/ü. Unlisted pairs count as
//! different. Pure functions, no state.

use pinyin::ToPinyin;

/// One toneless syllable: its initial ("" for none; y/w are folded into the final) and
/// its final, spelt with ü where it is pronounced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syllable {
    initial: &'static str,
    fin: &'static str,
}

/// The usual reading of `c`, or none for characters without a Mandarin reading (digits,
/// Latin letters, some Cantonese-only characters). Rare readings of heteronyms are left
/// out on purpose: 耐 read as "neng" would make 几耐 sound like 街灯.
pub fn reading(c: char) -> Option<Syllable> {
    c.to_pinyin().and_then(|p| Syllable::parse(p.plain()))
}

const INITIALS: [&str; 23] = [
    "zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r",
    "z", "c", "s", "y", "w",
];

const FINALS: [&str; 37] = [
    "a", "o", "e", "ai", "ei", "ao", "ou", "an", "en", "ang", "eng", "ong", "er", "i", "ia", "ie",
    "iao", "iu", "ian", "in", "iang", "ing", "iong", "io", "u", "ua", "uo", "uai", "ui", "uan",
    "un", "uang", "ueng", "ü", "üe", "üan", "ün",
];

impl Syllable {
    /// Parses toneless pinyin such as "zhuang", "yue", "lü", "nv".
    pub fn parse(plain: &str) -> Option<Syllable> {
        let plain = plain.replace('v', "ü");
        let (initial, rest) = match INITIALS.iter().find(|i| plain.starts_with(**i)) {
            Some(i) => (*i, &plain[i.len()..]),
            None => ("", plain.as_str()),
        };
        let fin = match initial {
            "y" => y_final(rest)?,
            "w" => w_final(rest)?,
            "j" | "q" | "x" => rest.replacen('u', "ü", 1),
            _ => rest.to_owned(),
        };
        let initial = if matches!(initial, "y" | "w") {
            ""
        } else {
            initial
        };
        let fin = FINALS.iter().find(|f| **f == fin)?;
        Some(Syllable { initial, fin })
    }

    /// The syllable with the distinctions that southern speakers and the small recogniser
    /// blur folded away (zh/z, ch/c, sh/s, n/l, -ng/-n): 社保 heard as 射宝 or 设保 all
    /// sound `se bao`, which is what the intent model's sound features count.
    pub fn folded(&self) -> String {
        let initial = match self.initial {
            "zh" => "z",
            "ch" => "c",
            "sh" => "s",
            "n" => "l",
            other => other,
        };
        let fin = match self.fin {
            "eng" => "en",
            "ing" => "in",
            "ang" => "an",
            "iang" => "ian",
            "uang" => "uan",
            other => other,
        };
        format!("{initial}{fin}")
    }

    /// 1.0 for the same syllable down to 0.0 for unrelated ones; the final weighs more
    /// than the initial, as it carries most of the sound.
    pub fn similarity(&self, other: &Syllable) -> f32 {
        if self == other {
            return 1.0;
        }
        0.35 * initial_similarity(self.initial, other.initial)
            + 0.65 * final_similarity(self.fin, other.fin)
    }
}

/// A syllable without initial, written with y: yi, ya, yue, yuan, you...
fn y_final(rest: &str) -> Option<String> {
    Some(match rest {
        "" => return None,
        "i" | "in" | "ing" => rest.to_owned(),
        "ou" => "iu".to_owned(),
        _ if rest.starts_with('u') || rest.starts_with('ü') => {
            format!("ü{}", rest.trim_start_matches(['u', 'ü']))
        }
        _ => format!("i{rest}"),
    })
}

/// A syllable without initial, written with w: wu, wa, wei, wen...
fn w_final(rest: &str) -> Option<String> {
    Some(match rest {
        "" => return None,
        "u" => "u".to_owned(),
        "ei" => "ui".to_owned(),
        "en" => "un".to_owned(),
        _ => format!("u{rest}"),
    })
}

fn initial_similarity(a: &str, b: &str) -> f32 {
    if a == b {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    const CONFUSED: [(&str, &str); 6] = [
        ("z", "zh"),
        ("c", "ch"),
        ("s", "sh"),
        ("n", "l"),
        ("l", "r"),
        ("f", "h"),
    ];
    if CONFUSED
        .iter()
        .any(|&(x, y)| (a, b) == (x, y) || (a, b) == (y, x))
    {
        return 0.7;
    }
    const GROUPS: [&[&str]; 9] = [
        &["b", "p", "m", "f"],
        &["d", "t", "n", "l"],
        &["g", "k", "h"],
        &["j", "q", "x"],
        &["zh", "ch", "sh", "r"],
        &["z", "c", "s"],
        &["j", "z", "zh"],
        &["q", "c", "ch"],
        &["x", "s", "sh"],
    ];
    if GROUPS.iter().any(|g| g.contains(&a) && g.contains(&b)) {
        0.5
    } else {
        0.0
    }
}

fn final_similarity(a: &str, b: &str) -> f32 {
    if a == b {
        return 1.0;
    }
    const CLOSE: [(&str, &str, f32); 22] = [
        // Front and back nasals, merged by many southern speakers.
        ("an", "ang", 0.8),
        ("en", "eng", 0.8),
        ("in", "ing", 0.8),
        ("ian", "iang", 0.8),
        ("uan", "uang", 0.8),
        ("un", "ong", 0.6),
        ("eng", "ong", 0.6),
        // i and ü differ only in lip rounding.
        ("i", "ü", 0.75),
        ("ie", "üe", 0.75),
        ("in", "ün", 0.75),
        ("ian", "üan", 0.75),
        // Mid vowels and diphthongs the small model swaps.
        ("uo", "o", 0.7),
        ("uo", "ou", 0.6),
        ("o", "ou", 0.6),
        ("e", "o", 0.6),
        ("ui", "ei", 0.6),
        ("en", "ei", 0.5),
        ("iu", "ou", 0.6),
        ("ai", "ei", 0.5),
        ("an", "en", 0.5),
        ("ang", "eng", 0.5),
        ("ian", "an", 0.5),
    ];
    CLOSE
        .iter()
        .find(|&&(x, y, _)| (a, b) == (x, y) || (a, b) == (y, x))
        .map_or(0.0, |p| p.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(a: char, b: char) -> f32 {
        reading(a)
            .expect("a has a reading")
            .similarity(&reading(b).expect("b has a reading"))
    }

    fn s(p: &str) -> (&'static str, &'static str) {
        let s = Syllable::parse(p).expect(p);
        (s.initial, s.fin)
    }

    #[test]
    fn parses_initials_finals_and_glides() {
        assert_eq!(s("zhuang"), ("zh", "uang"));
        assert_eq!(s("yue"), ("", "üe"));
        assert_eq!(s("xue"), ("x", "üe"));
        assert_eq!(s("ju"), ("j", "ü"));
        assert_eq!(s("wei"), ("", "ui"));
        assert_eq!(s("wen"), ("", "un"));
        assert_eq!(s("you"), ("", "iu"));
        assert_eq!(s("yong"), ("", "iong"));
        assert_eq!(s("yuan"), ("", "üan"));
        assert_eq!(s("lü"), s("lv"));
        assert_eq!(s("er"), ("", "er"));
        assert_eq!(s("ang"), ("", "ang"));
        assert_eq!(Syllable::parse("hm"), None);
    }

    #[test]
    fn homophones_are_identical_and_confusions_close() {
        assert_eq!(sim('射', '社'), 1.0);
        assert_eq!(sim('宝', '保'), 1.0);
        // 驱 qu / 气 qi: the same initial, ü against i.
        assert!(sim('驱', '气') > 0.8, "{}", sim('驱', '气'));
        // 落 luo / 漏 lou.
        assert!(sim('落', '漏') > 0.7, "{}", sim('落', '漏'));
        // zh/z and front/back nasals.
        assert!(sim('争', '增') > 0.85);
        assert!(sim('金', '京') > 0.85);
    }

    #[test]
    fn folding_merges_the_blurred_distinctions_only() {
        let folded = |c: char| reading(c).expect("a reading").folded();
        // 社保 as the small model and southern speakers say it.
        assert_eq!(folded('社'), folded('设'));
        assert_eq!(folded('社'), folded('色'));
        assert_eq!(folded('证'), folded('怎'));
        assert_eq!(folded('金'), folded('京'));
        assert_eq!(folded('男'), folded('蓝'));
        assert_eq!(folded('社'), "se");
        assert_ne!(folded('社'), folded('公'));
        assert_ne!(folded('气'), folded('去'));
    }

    #[test]
    fn unrelated_syllables_are_far_apart() {
        assert!(sim('员', '人') < 0.5, "{}", sim('员', '人'));
        assert!(sim('社', '公') < 0.3, "{}", sim('社', '公'));
        // 问 wen / 违 wei: same start, different final.
        assert!(sim('问', '违') < 0.5, "{}", sim('问', '违'));
        assert_eq!(reading('1'), None);
    }
}
