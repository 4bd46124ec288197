//! Samples out of a `/metrics` page (the Prometheus text format), read line by line without a
//! general parser: a subject's monitor reads a few families of a page of hundreds, each look.

/// Every sample of `family` (that name exactly, not one it begins): its labels' text
/// (`a="x",b="y"`, empty when it has none) and its value, in the page's order.
pub fn samples<'a>(text: &'a str, family: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |l| l.strip_prefix(family))
        .filter_map(|rest| {
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.rsplit_once('}')?,
                None => ("", rest.strip_prefix(' ')?),
            };
            // The value, then an optional timestamp.
            let v = value.split_whitespace().next()?.parse().ok()?;
            Some((labels, v))
        })
}

/// The first sample of `family`, only among those with the label `only` when given.
pub fn sample(text: &str, family: &str, only: Option<(&str, &str)>) -> Option<f64> {
    samples(text, family)
        .find(|(labels, _)| only.is_none_or(|(k, v)| label(labels, k) == Some(v)))
        .map(|(_, v)| v)
}

/// A label's value in `a="x",b="y"` (the labels our subjects read hold no escaped quotes or
/// commas).
pub fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# HELP x_total a counter\n# TYPE x_total counter\nx_total 3\nx_total_more 9\nsizes{type=\"used\"} 1.5e+09\nsizes{type=\"capacity\",store=\"4\"} 2 1700000000000\n";

    #[test]
    fn a_family_is_its_name_exactly_with_or_without_labels() {
        assert_eq!(sample(PAGE, "x_total", None), Some(3.0));
        assert_eq!(sample(PAGE, "x", None), None);
        assert_eq!(sample(PAGE, "sizes", Some(("type", "used"))), Some(1.5e9));
        assert_eq!(sample(PAGE, "sizes", Some(("type", "capacity"))), Some(2.0));
        assert_eq!(sample(PAGE, "sizes", Some(("type", "available"))), None);
        let all: Vec<_> = samples(PAGE, "sizes").collect();
        assert_eq!(all.len(), 2);
        assert_eq!(label(all[1].0, "store"), Some("4"));
    }
}
