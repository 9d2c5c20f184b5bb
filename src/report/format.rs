//! Numbers as the report shows them: thousands separators, a currency symbol (from
//! `report.currency`), fixed decimals. Pure functions of their inputs, so the page's
//! bytes depend only on the data.

/// `1234567.8` → `1,234,568` (rounded to whole units; `-` kept; non-finite as `n/a`).
pub fn thousands(value: f64) -> String {
    grouped(value, 0)
}

/// `value` with `decimals` decimals and thousands separators: `12,345.67`.
pub fn grouped(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + whole.len() / 3 + 1);
    // a value that rounds to zero shows no sign
    if value < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        out.push('-');
    }
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// An amount of money in whole units: `¥12,345`, `-¥120`.
pub fn money(value: f64, currency: &str) -> String {
    let text = thousands(value);
    match text.strip_prefix('-') {
        Some(rest) => format!("-{currency}{rest}"),
        None if text == "n/a" => text,
        None => format!("{currency}{text}"),
    }
}

/// A share as a percentage with one decimal: `0.1234` → `12.3%`.
pub fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.1}%", 100.0 * share)
    } else {
        "n/a".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped_in_threes() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(-98765.0), "-98,765");
        assert_eq!(thousands(-0.2), "0");
        assert_eq!(grouped(12345.678, 2), "12,345.68");
        assert_eq!(thousands(f64::NAN), "n/a");
    }

    #[test]
    fn money_puts_the_symbol_after_the_sign() {
        assert_eq!(money(12345.0, "¥"), "¥12,345");
        assert_eq!(money(-120.0, "€"), "-€120");
        assert_eq!(money(5.0, ""), "5");
        assert_eq!(percent(0.1234), "12.3%");
    }
}
