//! How a prompt text is read aloud: the text an operator writes ("请拨打12345，按1",
//! "9:30", "2026-10-01") becomes the words a person would say (幺二三四五, 按一, 九点半,
//! 二零二六年十月一日) before the synthesiser sees it. A synthesiser left to itself reads
//! 12345 as a quantity (一万二千三百四十五) and `#` as an English word. Pure: text in,
//! text out, per language; languages other than Mandarin and Cantonese pass unchanged.
//!
//! The rules, in order (dialplans/README.md documents them for operators):
//! 1. full-width digits and signs become ASCII;
//! 2. dates `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY年M月D日`: the year digit by digit;
//! 3. times `H:MM`: 九点, 九点半, 十七点零五分;
//! 4. keys: `按1` → 按一, `#` → 井号键, `*` → 星号键;
//! 5. percentages: `95%` → 百分之九十五;
//! 6. other numbers: followed by a measure word (位, 分钟, 元, 号...) or after 第 they are
//!    quantities (2 before a counting word is 两); otherwise a run of three or more digits is
//!    a phone, hotline or case number read digit by digit, Mandarin saying 幺 for 1.

/// The words of one language.
struct Lexicon {
    /// 0..=9 read as quantities.
    digits: [char; 10],
    /// 1 in a phone number.
    phone_one: char,
    /// 2 before a counting word (两位, 两分钟).
    two_of: char,
    point: char,
    ten_thousand: char,
    hash_key: &'static str,
    star_key: &'static str,
    key: char,
    hour: char,
    minute: char,
    half: char,
    year: char,
    month: char,
    day: char,
    percent: &'static str,
    /// Measure words before which 2 is said 两 (counts), not 二 (ordinals such as 二号).
    counting: &'static [&'static str],
}

const MANDARIN: Lexicon = Lexicon {
    digits: ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'],
    phone_one: '幺',
    two_of: '两',
    point: '点',
    ten_thousand: '万',
    hash_key: "井号键",
    star_key: "星号键",
    key: '键',
    hour: '点',
    minute: '分',
    half: '半',
    year: '年',
    month: '月',
    day: '日',
    percent: "百分之",
    counting: &[
        "位", "个", "名", "人", "分钟", "秒", "小时", "天", "次", "遍", "种", "件", "张", "条",
        "元", "块", "周", "个月", "年",
    ],
};

const CANTONESE: Lexicon = Lexicon {
    digits: ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'],
    phone_one: '一',
    two_of: '兩',
    point: '點',
    ten_thousand: '萬',
    hash_key: "井號鍵",
    star_key: "星號鍵",
    key: '鍵',
    hour: '點',
    minute: '分',
    half: '半',
    year: '年',
    month: '月',
    day: '號',
    percent: "百分之",
    counting: &[
        "位", "個", "名", "人", "分鐘", "秒", "個鐘", "小時", "日", "天", "次", "遍", "種", "件",
        "張", "條", "蚊", "元", "個月", "年",
    ],
};

/// Words after which a number is a quantity or an ordinal, not a string of digits.
const MEASURES: &[&str] = &[
    "位",
    "个",
    "個",
    "名",
    "人",
    "分钟",
    "分鐘",
    "分",
    "秒",
    "小时",
    "小時",
    "个钟",
    "個鐘",
    "天",
    "日",
    "号",
    "號",
    "月",
    "年",
    "岁",
    "歲",
    "元",
    "块",
    "蚊",
    "毫",
    "角",
    "次",
    "遍",
    "层",
    "層",
    "楼",
    "樓",
    "路",
    "条",
    "條",
    "项",
    "項",
    "步",
    "件",
    "张",
    "張",
    "点",
    "點",
    "周",
    "週",
    "星期",
    "倍",
    "公里",
    "米",
    "度",
    "期",
    "届",
    "屆",
    "份",
    "页",
    "頁",
    "户",
    "戶",
    "栋",
    "棟",
    "座",
    "单元",
    "單元",
    "室",
    "台",
    "辆",
    "輛",
    "本",
    "家",
    "间",
    "間",
    "种",
    "種",
    "线",
    "線",
    "组",
    "組",
    "万",
    "萬",
    "千",
    "百",
    "工作日",
];

/// `text` as it should be spoken in `language` (a dialplan language code).
pub fn spoken(text: &str, language: &str) -> String {
    let lex = match language {
        "cmn" => &MANDARIN,
        "yue" => &CANTONESE,
        _ => return text.to_owned(),
    };
    let chars: Vec<char> = text.chars().map(half_width).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(used) = date(&chars[i..], lex, &mut out)
            .or_else(|| time(&chars[i..], lex, &mut out))
            .or_else(|| percent(&chars[i..], lex, &mut out))
        {
            i += used;
        } else if c.is_ascii_digit() {
            i += number(&chars, i, lex, &mut out);
        } else if c == '#' || c == '*' {
            out.push_str(if c == '#' { lex.hash_key } else { lex.star_key });
            // "#键" already says the key.
            if matches!(chars.get(i + 1), Some('键' | '鍵')) {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn half_width(c: char) -> char {
    match c {
        '０'..='９' | '＃' | '＊' | '％' | '：' | '．' => {
            char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
        }
        _ => c,
    }
}

/// The digits at the start of `s`, as a count of characters and their value (saturating).
fn digits(s: &[char]) -> (usize, u64) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let value = s[..n].iter().fold(0u64, |v, c| {
        v.saturating_mul(10)
            .saturating_add(u64::from(c.to_digit(10).unwrap_or(0)))
    });
    (n, value)
}

fn starts_with(s: &[char], word: &str) -> bool {
    word.chars().enumerate().all(|(k, w)| s.get(k) == Some(&w))
}

/// `YYYY-MM-DD`, `YYYY/MM/DD` or `YYYY年M月D日`.
fn date(s: &[char], lex: &Lexicon, out: &mut String) -> Option<usize> {
    let (y, _) = digits(s);
    if y != 4 {
        return None;
    }
    let sep = *s.get(4)?;
    let (m, month) = digits(s.get(5..)?);
    if !matches!(sep, '-' | '/' | '年') || !(1..=2).contains(&m) {
        return None;
    }
    let sep2 = *s.get(5 + m)?;
    let expected = match sep {
        '年' => '月',
        other => other,
    };
    if sep2 != expected {
        return None;
    }
    let (d, day) = digits(s.get(6 + m..)?);
    if !(1..=2).contains(&d) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut used = 6 + m + d;
    if sep == '年' && matches!(s.get(used), Some('日' | '号' | '號')) {
        used += 1;
    }
    spell(&s[..4], lex.digits[1], lex, out);
    out.push(lex.year);
    quantity(month, lex, out);
    out.push(lex.month);
    quantity(day, lex, out);
    out.push(lex.day);
    Some(used)
}

/// `H:MM` or `HH:MM`.
fn time(s: &[char], lex: &Lexicon, out: &mut String) -> Option<usize> {
    let (h, hour) = digits(s);
    if !(1..=2).contains(&h) || s.get(h) != Some(&':') {
        return None;
    }
    let (m, minute) = digits(s.get(h + 1..)?);
    if m != 2 || hour > 24 || minute > 59 {
        return None;
    }
    if hour == 2 {
        out.push(lex.two_of);
    } else {
        quantity(hour, lex, out);
    }
    out.push(lex.hour);
    match minute {
        0 => {}
        30 => out.push(lex.half),
        1..=9 => {
            out.push(lex.digits[0]);
            quantity(minute, lex, out);
            out.push(lex.minute);
        }
        _ => {
            quantity(minute, lex, out);
            out.push(lex.minute);
        }
    }
    Some(h + 1 + m)
}

/// `95%`, `2.5%`.
fn percent(s: &[char], lex: &Lexicon, out: &mut String) -> Option<usize> {
    let (n, end) = number_span(s);
    if n == 0 || s.get(end) != Some(&'%') {
        return None;
    }
    out.push_str(lex.percent);
    decimal(&s[..end], lex, out);
    Some(end + 1)
}

/// A run of digits (with an optional decimal part) at `chars[at..]`: a quantity or a
/// string of digits, by what surrounds it.
fn number(chars: &[char], at: usize, lex: &Lexicon, out: &mut String) -> usize {
    let s = &chars[at..];
    let (n, value) = digits(s);
    let (_, end) = number_span(s);
    let fraction = end > n;
    let after = &s[end..];
    let pressed = at > 0 && matches!(chars[at - 1], '按' | '撳');
    let ordinal = at > 0 && chars[at - 1] == '第';
    let measured = MEASURES.iter().any(|m| starts_with(after, m));
    if pressed && n == 1 {
        // 按1 → 按一: a key is said as the digit, never 幺.
        out.push(lex.digits[value as usize]);
        if matches!(after.first(), Some('键' | '鍵')) {
            out.push(lex.key);
            return end + 1;
        }
        return end;
    }
    let year = n == 4 && !fraction && matches!(after.first(), Some('年'));
    if year {
        spell(&s[..n], lex.digits[1], lex, out);
    } else if fraction || ordinal || measured || n < 3 {
        if value == 2 && !fraction && !ordinal && lex.counting.iter().any(|m| starts_with(after, m))
        {
            out.push(lex.two_of);
        } else {
            decimal(&s[..end], lex, out);
        }
    } else {
        spell(&s[..n], lex.phone_one, lex, out);
    }
    end
}

/// Digit by digit, `one` for 1 (幺 in a Mandarin phone number, 一 elsewhere).
fn spell(digits: &[char], one: char, lex: &Lexicon, out: &mut String) {
    for c in digits {
        let d = c.to_digit(10).unwrap_or(0) as usize;
        out.push(if d == 1 { one } else { lex.digits[d] });
    }
}

/// Where a number starting `s` ends: its whole digits, then `.` and more digits if any.
/// (whole digits, characters used)
fn number_span(s: &[char]) -> (usize, usize) {
    let (n, _) = digits(s);
    let fraction = match (s.get(n), s.get(n + 1)) {
        (Some('.'), Some(c)) if c.is_ascii_digit() => digits(&s[n + 1..]).0,
        _ => 0,
    };
    (n, if fraction > 0 { n + 1 + fraction } else { n })
}

/// `12.5` → 十二点五.
fn decimal(s: &[char], lex: &Lexicon, out: &mut String) {
    let (n, value) = digits(s);
    if n > 12 {
        // Beyond any quantity a prompt states: say the digits.
        spell(&s[..n], lex.digits[1], lex, out);
    } else {
        quantity(value, lex, out);
    }
    if n < s.len() {
        out.push(lex.point);
        spell(&s[n + 1..], lex.digits[1], lex, out);
    }
}

/// A whole number as a quantity: 0 → 零, 10 → 十, 105 → 一百零五, 20000 → 二万.
fn quantity(value: u64, lex: &Lexicon, out: &mut String) {
    if value == 0 {
        out.push(lex.digits[0]);
        return;
    }
    let high = value / 10_000;
    let low = value % 10_000;
    if high > 0 {
        // 两万, as people say it.
        if high == 2 {
            out.push(lex.two_of);
        } else {
            quantity(high, lex, out);
        }
        out.push(lex.ten_thousand);
        if low > 0 && low < 1000 {
            out.push(lex.digits[0]);
        }
        if low > 0 {
            below_ten_thousand(low, lex, out, false);
        }
        return;
    }
    below_ten_thousand(low, lex, out, true);
}

fn below_ten_thousand(value: u64, lex: &Lexicon, out: &mut String, leading: bool) {
    const UNITS: [Option<char>; 4] = [Some('千'), Some('百'), Some('十'), None];
    let places = [value / 1000, value / 100 % 10, value / 10 % 10, value % 10];
    let mut started = false;
    let mut zero = false;
    for (k, (&d, unit)) in places.iter().zip(UNITS).enumerate() {
        if d == 0 {
            zero = started;
            continue;
        }
        if zero {
            out.push(lex.digits[0]);
            zero = false;
        }
        // 十二, not 一十二, when the number starts with its tens.
        let bare_ten = k == 2 && d == 1 && !started && leading;
        if !bare_ten {
            out.push(lex.digits[d as usize]);
        }
        if let Some(u) = unit {
            out.push(u);
        }
        started = true;
    }
}

#[cfg(test)]
mod tests {
    use super::spoken;

    #[test]
    fn hotline_and_phone_numbers_are_read_digit_by_digit() {
        assert_eq!(
            spoken("这里是12345市民服务热线", "cmn"),
            "这里是幺二三四五市民服务热线"
        );
        assert_eq!(spoken("呢度係12345熱線", "yue"), "呢度係一二三四五熱線");
        assert_eq!(
            spoken("请拨打13800138000或者010-12345678", "cmn"),
            "请拨打幺三八零零幺三八零零零或者零幺零-幺二三四五六七八"
        );
        assert_eq!(spoken("报警请打110", "cmn"), "报警请打幺幺零");
    }

    #[test]
    fn keys_are_said_as_digits_and_named_signs() {
        assert_eq!(spoken("普通话请按1", "cmn"), "普通话请按一");
        assert_eq!(spoken("按0转人工", "cmn"), "按零转人工");
        assert_eq!(spoken("请按1键", "cmn"), "请按一键");
        assert_eq!(
            spoken("按#结束，按*返回", "cmn"),
            "按井号键结束，按星号键返回"
        );
        assert_eq!(spoken("按#键", "cmn"), "按井号键");
        assert_eq!(spoken("按＃", "yue"), "按井號鍵");
        assert_eq!(spoken("廣東話請按２", "yue"), "廣東話請按二");
    }

    #[test]
    fn times_and_dates_are_read_as_people_say_them() {
        assert_eq!(spoken("9:00至17:30", "cmn"), "九点至十七点半");
        assert_eq!(spoken("8:05开门", "cmn"), "八点零五分开门");
        assert_eq!(spoken("2:15", "cmn"), "两点十五分");
        assert_eq!(spoken("12:45", "yue"), "十二點四十五分");
        assert_eq!(spoken("2026-10-01起", "cmn"), "二零二六年十月一日起");
        assert_eq!(spoken("2026年10月1日", "cmn"), "二零二六年十月一日");
        assert_eq!(spoken("2026/1/15", "yue"), "二零二六年一月十五號");
        assert_eq!(spoken("自2026年起", "cmn"), "自二零二六年起");
        // Not a date (no month 13): the parts are read as numbers.
        assert_eq!(spoken("2026-13-01", "cmn"), "二零二六-十三-一");
    }

    #[test]
    fn quantities_keep_their_units() {
        assert_eq!(spoken("您前面还有3位", "cmn"), "您前面还有三位");
        assert_eq!(spoken("您前面还有105位", "cmn"), "您前面还有一百零五位");
        assert_eq!(spoken("约等待2分钟", "cmn"), "约等待两分钟");
        assert_eq!(spoken("地铁2号线", "cmn"), "地铁二号线");
        assert_eq!(spoken("第2位", "cmn"), "第二位");
        assert_eq!(spoken("大概12分鐘", "yue"), "大概十二分鐘");
        assert_eq!(spoken("满意度95%", "cmn"), "满意度百分之九十五");
        assert_eq!(spoken("上涨2.5%", "cmn"), "上涨百分之二点五");
        assert_eq!(spoken("费用3.5元", "cmn"), "费用三点五元");
        assert_eq!(spoken("共10010人", "cmn"), "共一万零一十人");
        assert_eq!(spoken("20000元", "cmn"), "两万元");
        assert_eq!(spoken("35000元", "cmn"), "三万五千元");
        assert_eq!(spoken("服务10年", "cmn"), "服务十年");
        assert_eq!(spoken("还有45秒", "cmn"), "还有四十五秒");
    }

    #[test]
    fn other_text_and_languages_pass_unchanged() {
        assert_eq!(spoken("您好，请稍候。", "cmn"), "您好，请稍候。");
        assert_eq!(spoken("Press 1", "en"), "Press 1");
        assert_eq!(spoken("", "cmn"), "");
    }
}
