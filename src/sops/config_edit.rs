//! Adding recipients to a `.sops.yaml` as text, so that every existing rule, its order, its
//! comments and its formatting stay exactly as they were: a new rule is inserted right after the
//! `creation_rules:` line (before every existing rule, since sops takes the first rule that
//! matches and a catch-all would shadow it); recipients for a rule with the same `path_regex` go
//! into that rule's `age` list (flat, or the first key group). What cannot be edited safely as
//! text (flow style, a rule shape tskeyctl does not recognise) is refused, never guessed.

use super::formats::yaml;
use super::tree::{Item, Node};

/// Why the config cannot be edited.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigEditError(pub String);

/// The result of [`add_recipients`].
#[derive(Debug, PartialEq)]
pub struct Added {
    /// The new config text.
    pub text: String,
    /// The rule's recipients after the change (old ones first).
    pub rule_recipients: Vec<String>,
    /// Recipients that were already in the rule (left alone).
    pub already: Vec<String>,
    /// Whether a new rule was made (else an existing one was extended).
    pub new_rule: bool,
}

/// Single-quotes a YAML scalar unless it is plainly safe.
pub fn yaml_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+=".contains(c))
        && !s.starts_with('-');
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// A `creation_rules` list entry at indentation `ind` (the `- ` column).
pub fn rule_text(ind: &str, path_regex: &str, recipients: &[String]) -> String {
    let mut s = format!(
        "{ind}- path_regex: {}\n{ind}  key_groups:\n{ind}    - age:\n",
        yaml_quote(path_regex)
    );
    for r in recipients {
        s.push_str(&format!("{ind}        - {}\n", yaml_quote(r)));
    }
    s
}

fn get<'a>(items: &'a [Item], k: &str) -> Option<&'a Node> {
    items
        .iter()
        .find(|i| i.key.as_deref() == Some(k))
        .map(|i| &i.value)
}

fn text(n: &Node) -> Option<String> {
    match n {
        Node::Str(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

fn strings(n: Option<&Node>) -> Vec<String> {
    match n {
        Some(Node::Seq(v)) => v.iter().filter_map(text).flat_map(|s| split(&s)).collect(),
        Some(n) => text(n).map(|s| split(&s)).unwrap_or_default(),
        None => Vec::new(),
    }
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// Adds `recipients` for `path_regex` to the config `existing` (`None`: a new file).
pub fn add_recipients(
    existing: Option<&str>,
    path_regex: &str,
    recipients: &[String],
) -> Result<Added, ConfigEditError> {
    let bad = |m: &str| ConfigEditError(m.to_string());
    let Some(existing) = existing.filter(|t| !t.trim().is_empty()) else {
        return Ok(Added {
            text: format!(
                "creation_rules:\n{}",
                rule_text("  ", path_regex, recipients)
            ),
            rule_recipients: recipients.to_vec(),
            already: Vec::new(),
            new_rule: true,
        });
    };
    let docs = yaml::load(existing).map_err(|e| ConfigEditError(e.to_string()))?;
    if docs.len() > 1 {
        return Err(bad("it holds several YAML documents; edit it by hand"));
    }
    let root = docs.into_iter().next().unwrap_or_default();
    let lines: Vec<&str> = existing.split_inclusive('\n').collect();
    let header = lines
        .iter()
        .position(|l| l.trim_end() == "creation_rules:" || l.starts_with("creation_rules:"));
    let rules: Vec<&Vec<Item>> = match get(&root, "creation_rules") {
        Some(Node::Seq(v)) => v
            .iter()
            .filter_map(|n| match n {
                Node::Map(m) => Some(m),
                _ => None,
            })
            .collect(),
        None | Some(Node::Null) => Vec::new(),
        Some(_) => return Err(bad("creation_rules is not a list")),
    };
    let Some(h) = header else {
        // No creation_rules yet: append the section (after the other keys).
        let mut text = existing.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("creation_rules:\n");
        text.push_str(&rule_text("  ", path_regex, recipients));
        return Ok(Added {
            text,
            rule_recipients: recipients.to_vec(),
            already: Vec::new(),
            new_rule: true,
        });
    };
    if lines[h].trim_end() != "creation_rules:" {
        let after = lines[h]["creation_rules:".len()..].trim();
        if !after.starts_with('#') {
            return Err(bad(
                "creation_rules is written in flow style ([…]); edit it by hand",
            ));
        }
    }
    // The list items after the header: lines at the list's `- ` column.
    let body_end = lines[h + 1..]
        .iter()
        .position(|l| !is_blank_or_comment(l) && indent(l) == 0 && !l.starts_with("- "))
        .map(|p| h + 1 + p)
        .unwrap_or(lines.len());
    let first_item = lines[h + 1..body_end]
        .iter()
        .position(|l| l.trim_start().starts_with("- ") || l.trim_end().ends_with('-'))
        .map(|p| h + 1 + p);
    let item_ind = first_item.map(|i| indent(lines[i])).unwrap_or(2);
    let starts: Vec<usize> = (h + 1..body_end)
        .filter(|&i| {
            indent(lines[i]) == item_ind
                && !is_blank_or_comment(lines[i])
                && lines[i].trim_start().starts_with('-')
        })
        .collect();
    if starts.len() != rules.len() {
        return Err(bad(
            "the layout of creation_rules is not one tskeyctl can edit as text; edit it by hand",
        ));
    }
    let same = rules
        .iter()
        .position(|r| get(r, "path_regex").and_then(text).as_deref() == Some(path_regex));
    let Some(k) = same else {
        let ind = " ".repeat(item_ind);
        let mut text: String = lines[..=h].concat();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&rule_text(&ind, path_regex, recipients));
        text.push_str(&lines[h + 1..].concat());
        return Ok(Added {
            text,
            rule_recipients: recipients.to_vec(),
            already: Vec::new(),
            new_rule: true,
        });
    };
    let rule = rules[k];
    let (old, via_groups) = match get(rule, "key_groups") {
        Some(Node::Seq(gs)) if !gs.is_empty() => match &gs[0] {
            Node::Map(g) => (strings(get(g, "age")), true),
            _ => {
                return Err(bad(
                    "the rule's first key group is not a map; edit it by hand",
                ));
            }
        },
        _ => (strings(get(rule, "age")), false),
    };
    let already: Vec<String> = recipients
        .iter()
        .filter(|r| old.contains(r))
        .cloned()
        .collect();
    let new: Vec<String> = recipients
        .iter()
        .filter(|r| !old.contains(r))
        .cloned()
        .collect();
    let mut all = old.clone();
    all.extend(new.iter().cloned());
    if new.is_empty() {
        return Ok(Added {
            text: existing.to_string(),
            rule_recipients: all,
            already,
            new_rule: false,
        });
    }
    let end = starts.get(k + 1).copied().unwrap_or(body_end);
    let block = starts[k]..end;
    // The `age:` line of the rule (or of its first key group).
    let age_line = block.clone().find(|&i| {
        let t = lines[i].trim_start().trim_start_matches("- ");
        let in_groups = block.clone().take_while(|&j| j < i).any(|j| {
            lines[j]
                .trim_start()
                .trim_start_matches("- ")
                .starts_with("key_groups:")
        });
        t.starts_with("age:") && (in_groups == via_groups)
    });
    let Some(a) = age_line else {
        return Err(bad(
            "the rule with this path_regex has no age entry tskeyctl can extend; edit it by hand",
        ));
    };
    let value = lines[a].trim_start().trim_start_matches("- ")["age:".len()..].trim();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if value.is_empty() || value.starts_with('#') {
        // A block list: add after its last item, at the items' indentation.
        let items: Vec<usize> = (a + 1..end)
            .take_while(|&i| {
                is_blank_or_comment(lines[i]) || lines[i].trim_start().starts_with("- ")
            })
            .filter(|&i| lines[i].trim_start().starts_with("- "))
            .collect();
        let Some(&last) = items.last() else {
            return Err(bad(
                "the rule's age list is empty or not a block list; edit it by hand",
            ));
        };
        let ind = " ".repeat(indent(lines[last]));
        let add: String = new
            .iter()
            .map(|r| format!("{ind}- {}\n", yaml_quote(r)))
            .collect();
        if !out[last].ends_with('\n') {
            out[last].push('\n');
        }
        out.insert(last + 1, add);
    } else if value.starts_with('[') {
        return Err(bad(
            "the rule's age list is in flow style ([…]); edit it by hand",
        ));
    } else {
        // A comma-separated string: the same, with the new recipients appended.
        let prefix_len = lines[a].len() - lines[a].trim_start().len()
            + (lines[a].trim_start().len() - lines[a].trim_start().trim_start_matches("- ").len());
        let prefix = &lines[a][..prefix_len];
        out[a] = format!("{prefix}age: {}\n", yaml_quote(&all.join(",")));
    }
    Ok(Added {
        text: out.concat(),
        rule_recipients: all,
        already,
        new_rule: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "age1p03njzql5qqtqy0wc73u0s88f2cprd3z0rr03g2ghhw5vjpe8fqslx6yns";

    #[test]
    fn a_new_rule_goes_first_and_everything_else_stays() {
        let old = "# top\ncreation_rules:\n  # catch-all\n  - age: x\nother: 1\n";
        let a = add_recipients(Some(old), "a/.*", &[R1.into()]).unwrap();
        assert_eq!(
            a.text,
            format!(
                "# top\ncreation_rules:\n  - path_regex: 'a/.*'\n    key_groups:\n      - age:\n          - {R1}\n  # catch-all\n  - age: x\nother: 1\n"
            )
        );
    }

    #[test]
    fn the_same_path_regex_gets_the_recipients() {
        let old = "creation_rules:\n  - path_regex: 'a/.*'\n    key_groups:\n      - age:\n          - x # mine\n  - age: y\n";
        let a = add_recipients(Some(old), "a/.*", &[R1.into(), "x".into()]).unwrap();
        assert_eq!(
            a.text,
            format!(
                "creation_rules:\n  - path_regex: 'a/.*'\n    key_groups:\n      - age:\n          - x # mine\n          - {R1}\n  - age: y\n"
            )
        );
        assert_eq!(a.already, vec!["x".to_string()]);
        let flat = "creation_rules:\n- path_regex: b\n  age: x,y\n";
        let a = add_recipients(Some(flat), "b", &[R1.into()]).unwrap();
        assert_eq!(
            a.text,
            format!("creation_rules:\n- path_regex: b\n  age: 'x,y,{R1}'\n")
        );
    }

    #[test]
    fn flow_style_is_refused() {
        assert!(add_recipients(Some("creation_rules: [{age: x}]\n"), "a", &[R1.into()]).is_err());
    }
}
