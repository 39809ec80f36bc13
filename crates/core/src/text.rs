//! Cutting text down for messages, logs and size-limited answers, always on a character
//! boundary.

/// `text` cut to at most `max` characters, the cut marked with `…`.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// The longest start of `text` that fits in `max_bytes` bytes without splitting a character.
pub fn prefix_within(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_on_character_boundaries() {
        assert_eq!(shorten("listings", 8), "listings");
        assert_eq!(shorten("listings", 4), "list…");
        assert_eq!(shorten("Müller-Lüdenscheidt", 3), "Mül…");
        assert_eq!(shorten("", 0), "");
        assert_eq!(shorten("ab", 0), "…");
        // "ü" is two bytes: a cut in its middle keeps it out.
        assert_eq!(prefix_within("Müller", 2), "M");
        assert_eq!(prefix_within("Müller", 3), "Mü");
        assert_eq!(prefix_within("abc", 10), "abc");
    }
}
