//! YAML loading the way sops 3.11 (go-yaml v3) sees it: one branch per document, comments as
//! tree items, go-yaml v3 scalar typing, anchors expanded within a node budget (alias bombs
//! fail fast), duplicate keys and non-string keys rejected.
//!
//! Comment placement follows what `stores/yaml/store.go` builds from go-yaml's head/line/foot
//! comments: own-line comments stay where they are, at the nesting level their column says;
//! a same-line comment (`a: 1 # c`) goes before the item it trails.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use granit_parser::{Event, Options, Parser, Placement, ScalarStyle, Span, Tag};

use super::yaml_scalar::{go_parse_int, resolve_plain};
use super::{Format, FormatError, syntax, unsupported};
use crate::sops::gofmt;
use crate::sops::tree::{Branch, Item, Node};

pub use super::yaml_emit::{emit, emit_value, scalar_text};

/// Most nodes a document may expand to through aliases.
const NODE_BUDGET: usize = 1_000_000;

enum Frame {
    Map {
        items: Vec<Item>,
        seen: HashSet<String>,
        key: Option<String>,
        start: usize,
        col: usize,
        anchor: usize,
    },
    Seq {
        items: Vec<Node>,
        start: usize,
        col: usize,
        anchor: usize,
    },
}

struct Loader {
    frames: Vec<Frame>,
    pending: Vec<(String, usize)>,
    anchors: HashMap<usize, (Node, usize)>,
    budget: usize,
    docs: Vec<Branch>,
    doc_root: Option<Node>,
    doc_comments: Vec<Item>,
    /// Line of the last scalar or alias: a same-line comment trails it.
    last_line: usize,
}

fn count(n: &Node) -> usize {
    match n {
        Node::Map(items) => 1 + items.iter().map(|i| count(&i.value)).sum::<usize>(),
        Node::Seq(v) => 1 + v.iter().map(count).sum::<usize>(),
        _ => 1,
    }
}

fn err_line(span: &Span) -> String {
    format!("line {}", span.start.line())
}

impl Loader {
    fn flush_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        match self.frames.last_mut() {
            Some(Frame::Map { items, .. }) => {
                items.extend(pending.into_iter().map(|(c, _)| Item::comment(c)))
            }
            Some(Frame::Seq { items, .. }) => {
                items.extend(pending.into_iter().map(|(c, _)| Node::Comment(c)))
            }
            None => self
                .doc_comments
                .extend(pending.into_iter().map(|(c, _)| Item::comment(c))),
        }
    }

    /// A node is about to start in the current frame (a key, or a sequence item).
    fn node_starts(&mut self) {
        self.flush_pending();
        self.mark_start();
    }

    /// A nested block starts: pending comments at or left of the parent's column are the
    /// parent's (a sequence item's head comment sits at the dash); deeper ones are the block's.
    fn collection_starts(&mut self) {
        let parent_col = match self.frames.last() {
            Some(Frame::Map { col, .. } | Frame::Seq { col, .. }) => Some(*col),
            None => None,
        };
        if let Some(pc) = parent_col {
            let split = self
                .pending
                .iter()
                .position(|(_, c)| *c > pc)
                .unwrap_or(self.pending.len());
            let child = self.pending.split_off(split);
            self.flush_pending();
            self.pending = child;
        }
        self.mark_start();
    }

    /// Records where the current item starts (same-line comments are inserted there).
    /// A collection starting does not flush pending comments: comments between a key and
    /// its nested block are that block's head comments.
    fn mark_start(&mut self) {
        match self.frames.last_mut() {
            Some(Frame::Map {
                items, key, start, ..
            }) if key.is_none() => *start = items.len(),
            Some(Frame::Seq { items, start, .. }) => *start = items.len(),
            _ => {}
        }
    }

    fn is_key_position(&self) -> bool {
        matches!(self.frames.last(), Some(Frame::Map { key: None, .. }))
    }

    fn same_line_comment(&mut self, text: String) {
        match self.frames.last_mut() {
            Some(Frame::Map { items, start, .. }) => {
                let at = (*start).min(items.len());
                items.insert(at, Item::comment(text));
                *start += 1;
            }
            Some(Frame::Seq { items, start, .. }) => {
                let at = (*start).min(items.len());
                items.insert(at, Node::Comment(text));
                *start += 1;
            }
            None => self.pending.push((text, 0)),
        }
    }

    fn charge(&mut self, n: usize) -> Result<(), FormatError> {
        self.budget = self.budget.saturating_add(n);
        if self.budget > NODE_BUDGET {
            return Err(unsupported(
                Format::Yaml,
                format!(
                    "aliases expand to more than {NODE_BUDGET} nodes (an alias bomb?); refusing"
                ),
            ));
        }
        Ok(())
    }

    /// A complete value arrived in the current frame.
    fn value(&mut self, v: Node, span: &Span) -> Result<(), FormatError> {
        match self.frames.last_mut() {
            None => {
                self.doc_root = Some(v);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(v);
                Ok(())
            }
            Some(Frame::Map {
                items, key, seen, ..
            }) => match key.take() {
                None => {
                    let k = match v {
                        Node::Str(b) => String::from_utf8(b).map_err(|_| {
                            unsupported(
                                Format::Yaml,
                                format!("{}: key is not UTF-8", err_line(span)),
                            )
                        })?,
                        other => {
                            return Err(unsupported(
                                Format::Yaml,
                                format!(
                                    "{}: a {} mapping key; only string keys are supported",
                                    err_line(span),
                                    other.type_name()
                                ),
                            ));
                        }
                    };
                    if !seen.insert(k.clone()) {
                        return Err(unsupported(
                            Format::Yaml,
                            format!("{}: duplicate mapping key", err_line(span)),
                        ));
                    }
                    *key = Some(k);
                    Ok(())
                }
                Some(k) => {
                    items.push(Item::pair(k, v));
                    Ok(())
                }
            },
        }
    }

    fn close(&mut self) -> Result<(Node, usize), FormatError> {
        let frame = self
            .frames
            .pop()
            .ok_or_else(|| syntax(Format::Yaml, "unbalanced structure"))?;
        // Own-line comments indented at least as deep as this level trail it.
        let (mut node, col, anchor) = match frame {
            Frame::Map {
                items, col, anchor, ..
            } => (Node::Map(items), col, anchor),
            Frame::Seq {
                items, col, anchor, ..
            } => (Node::Seq(items), col, anchor),
        };
        let split = self.pending.iter().position(|(_, c)| *c < col);
        let trailing: Vec<(String, usize)> = match split {
            Some(i) => {
                let rest = self.pending.split_off(i);
                std::mem::replace(&mut self.pending, rest)
            }
            None => std::mem::take(&mut self.pending),
        };
        match &mut node {
            Node::Map(items) => items.extend(trailing.into_iter().map(|(c, _)| Item::comment(c))),
            Node::Seq(items) => items.extend(trailing.into_iter().map(|(c, _)| Node::Comment(c))),
            _ => {}
        }
        Ok((node, anchor))
    }

    fn end_document(&mut self) -> Result<(), FormatError> {
        let root = self.doc_root.take();
        let mut branch = std::mem::take(&mut self.doc_comments);
        match root {
            None | Some(Node::Null) => {}
            Some(Node::Map(items)) => branch.extend(items),
            Some(Node::Seq(_)) => {
                return Err(unsupported(
                    Format::Yaml,
                    "YAML documents that are sequences are not supported",
                ));
            }
            Some(_) => {
                return Err(unsupported(
                    Format::Yaml,
                    "YAML documents that are values are not supported",
                ));
            }
        }
        branch.extend(self.pending.drain(..).map(|(c, _)| Item::comment(c)));
        self.docs.push(branch);
        self.anchors.clear();
        Ok(())
    }
}

fn scalar(
    value: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    span: &Span,
) -> Result<Node, FormatError> {
    if let Some(t) = tag {
        if t.is_yaml_core_schema() || t.handle() == "tag:yaml.org,2002:" {
            return Ok(match t.suffix() {
                "str" => Node::str(value),
                "null" => Node::Null,
                "bool" => match value {
                    "true" | "True" | "TRUE" => Node::Bool(true),
                    "false" | "False" | "FALSE" => Node::Bool(false),
                    _ => {
                        return Err(syntax(
                            Format::Yaml,
                            format!("{}: invalid !!bool", err_line(span)),
                        ));
                    }
                },
                "int" => Node::Int(go_parse_int(&value.replace('_', "")).ok_or_else(|| {
                    syntax(Format::Yaml, format!("{}: invalid !!int", err_line(span)))
                })?),
                "float" => Node::Float(match resolve_plain(value) {
                    Node::Float(f) => f,
                    Node::Int(i) => i as f64,
                    _ => {
                        return Err(syntax(
                            Format::Yaml,
                            format!("{}: invalid !!float", err_line(span)),
                        ));
                    }
                }),
                "binary" => {
                    let clean: String = value.chars().filter(|c| !c.is_whitespace()).collect();
                    Node::Str(
                        base64::engine::general_purpose::STANDARD
                            .decode(clean)
                            .map_err(|_| {
                                syntax(
                                    Format::Yaml,
                                    format!("{}: invalid !!binary", err_line(span)),
                                )
                            })?,
                    )
                }
                "timestamp" => match gofmt::parse_time(value, false) {
                    Some(t) => Node::Time(t.rfc3339_nano()),
                    None => Node::str(value),
                },
                _ => Node::str(value),
            });
        }
        // Custom tags are dropped; the value stays a string.
        return Ok(Node::str(value));
    }
    Ok(match style {
        ScalarStyle::Plain => resolve_plain(value),
        _ => Node::str(value),
    })
}

/// Loads every document of `text`.
pub fn load(text: &str) -> Result<Vec<Branch>, FormatError> {
    let mut opts = Options::default();
    opts.set_emit_comments(true);
    let parser = Parser::new_from_str_with_options(text, opts);
    let mut l = Loader {
        frames: Vec::new(),
        pending: Vec::new(),
        anchors: HashMap::new(),
        budget: 0,
        docs: Vec::new(),
        doc_root: None,
        doc_comments: Vec::new(),
        last_line: usize::MAX,
    };
    for ev in parser {
        let (ev, span) = ev.map_err(|e| syntax(Format::Yaml, e.to_string()))?;
        match ev {
            Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(..) => {
                l.doc_root = None;
            }
            Event::DocumentEnd => l.end_document()?,
            Event::Comment(text, placement) => {
                let text = text.into_owned();
                if placement == Placement::Right && span.start.line() == l.last_line {
                    l.same_line_comment(text);
                } else if placement == Placement::Right {
                    // After a bare `- ` or `key:`: the head comment of what follows, at the
                    // current block's level.
                    let col = match l.frames.last() {
                        Some(Frame::Map { col, .. } | Frame::Seq { col, .. }) => *col,
                        None => 0,
                    };
                    l.pending.push((text, col));
                } else {
                    l.pending.push((text, span.start.col()));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                l.last_line = span.end.line();
                l.node_starts();
                let n = scalar(&value, style, tag.as_deref(), &span)?;
                if anchor != 0 {
                    l.anchors.insert(anchor, (n.clone(), 1));
                }
                l.charge(1)?;
                l.value(n, &span)?;
            }
            Event::Alias(id) => {
                l.last_line = span.end.line();
                l.node_starts();
                let (n, c) = l.anchors.get(&id).cloned().ok_or_else(|| {
                    syntax(Format::Yaml, format!("{}: unknown alias", err_line(&span)))
                })?;
                l.charge(c)?;
                l.value(n, &span)?;
            }
            Event::MappingStart(_, anchor, _) | Event::SequenceStart(_, anchor, _) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                if l.is_key_position() {
                    return Err(unsupported(
                        Format::Yaml,
                        format!(
                            "{}: a complex mapping key; only string keys are supported",
                            err_line(&span)
                        ),
                    ));
                }
                l.collection_starts();
                l.charge(1)?;
                let col = span.start.col();
                l.frames.push(if is_map {
                    Frame::Map {
                        items: Vec::new(),
                        seen: HashSet::new(),
                        key: None,
                        start: 0,
                        col,
                        anchor,
                    }
                } else {
                    Frame::Seq {
                        items: Vec::new(),
                        start: 0,
                        col,
                        anchor,
                    }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let (n, anchor) = l.close()?;
                if anchor != 0 {
                    let c = count(&n);
                    l.anchors.insert(anchor, (n.clone(), c));
                }
                l.value(n, &span)?;
            }
            _ => {}
        }
    }
    Ok(l.docs)
}
