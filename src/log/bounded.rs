//! Bounded messages: a hostile file decides how many recipients, stanzas, keys or notes an error
//! lists, so every list joined into a message goes through here.
//!
//! [`list`] keeps the first few items (each cut to a readable length) and says "and N more";
//! [`cap`] is the last line of defence in `cli::main` and the logger, so no single message is
//! more than about 1 KB whatever a module put into it.

/// Items shown before "and N more".
pub const ITEMS: usize = 5;
/// Longest item shown (an ssh-ed25519 recipient line with a comment is about 100 characters).
pub const ITEM_CHARS: usize = 120;
/// Longest message printed.
pub const MESSAGE_BYTES: usize = 1024;

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Joins the first [`ITEMS`] items with `sep`, each clipped, adding "and N more".
pub fn list<S: AsRef<str>>(items: &[S], sep: &str) -> String {
    list_of(items, sep, ITEM_CHARS)
}

/// [`list`] with items clipped to `item_chars` (for items that are whole messages).
pub fn list_of<S: AsRef<str>>(items: &[S], sep: &str, item_chars: usize) -> String {
    let mut out = items
        .iter()
        .take(ITEMS)
        .map(|s| clip(s.as_ref(), item_chars))
        .collect::<Vec<_>>()
        .join(sep);
    if items.len() > ITEMS {
        out.push_str(&format!("{sep}and {} more", items.len() - ITEMS));
    }
    out
}

/// Cuts a whole message to about [`MESSAGE_BYTES`], on a character boundary.
pub fn cap(msg: &str) -> String {
    if msg.len() <= MESSAGE_BYTES {
        return msg.to_string();
    }
    let mut end = MESSAGE_BYTES;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &msg[..end], msg.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_messages_are_bounded() {
        let many: Vec<String> = (0..1000).map(|i| format!("age1recipient{i}")).collect();
        assert_eq!(
            list(&many, ", "),
            "age1recipient0, age1recipient1, age1recipient2, age1recipient3, age1recipient4, and \
995 more"
        );
        assert_eq!(list(&["a", "b"], ", "), "a, b");
        assert_eq!(clip(&"é".repeat(200), 3), "ééé…");
        let long = "é".repeat(2000);
        let c = cap(&long);
        assert!(c.len() < MESSAGE_BYTES + 40, "{}", c.len());
        assert!(c.ends_with("more bytes)"));
        assert_eq!(cap("short"), "short");
    }
}
