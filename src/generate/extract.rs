//! Finding the scheduler in a model's reply.
//!
//! The prompt asks for the whole BPF C file in one fenced code block. Models add prose before and
//! after, sometimes a header or a build command in another block, sometimes two versions of the
//! file, sometimes nothing but an apology, and a reply cut off at the token limit ends inside
//! the block. [`extract_scheduler`] accepts exactly one block that looks like a sched_ext
//! scheduler and otherwise returns an [`ExtractError`] whose text is written to be sent back to
//! the model in the repair turn ("reply has 2 scheduler sources; expected exactly one").
//!
//! A block counts when its fence has no language, or one of `c`, `bpf`, `h`, `ebpf`; it is a
//! scheduler when it contains `SEC(".struct_ops`, `SCX_OPS_DEFINE` or `struct sched_ext_ops`.
//! Windows line endings are normalised first; identical copies of the same file count once.

use serde::{Deserialize, Serialize};

/// Fence languages whose blocks may hold the scheduler.
const C_LANGUAGES: &[&str] = &["", "c", "bpf", "h", "ebpf", "bpf.c"];
/// Text that only a sched_ext scheduler contains.
const SCHEDULER_MARKS: &[&str] = &[
    "SEC(\".struct_ops",
    "SCX_OPS_DEFINE",
    "struct sched_ext_ops",
];

/// Why a reply holds no usable scheduler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the model replied without a code block{hint}")]
    NoCode { hint: String },
    #[error(
        "the reply ends inside a code block (no closing ```): it was probably cut off; send the \
         whole file again, shorter if needed"
    )]
    Unterminated,
    #[error("reply has {count} scheduler sources; expected exactly one")]
    SeveralSchedulers { count: usize },
    #[error(
        "the reply's code is not a sched_ext scheduler: none of its {blocks} code block(s) \
         ({languages}) has SEC(\".struct_ops\"), SCX_OPS_DEFINE or struct sched_ext_ops"
    )]
    NotAScheduler { blocks: usize, languages: String },
}

/// One fenced block of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeBlock {
    /// First word of the fence's info string, lower-cased; empty when there is none.
    pub language: String,
    /// The lines between the fences, each ending in `\n`.
    pub code: String,
    /// False when the reply ended before the closing fence.
    pub closed: bool,
}

impl CodeBlock {
    fn is_c(&self) -> bool {
        C_LANGUAGES.contains(&self.language.as_str())
    }

    fn is_scheduler(&self) -> bool {
        self.is_c() && SCHEDULER_MARKS.iter().any(|m| self.code.contains(m))
    }
}

/// The scheduler found in a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracted {
    /// The C source, `\n` line endings, ending in a newline.
    pub source: String,
    /// The fence's language ("" when none).
    pub language: String,
    /// Code blocks in the reply, the chosen one included.
    pub blocks: usize,
}

/// All fenced blocks of `reply`, in order. Fences are ```` ``` ```` or `~~~` (three or more),
/// indented by at most three spaces; a block closes at a fence of the same character at least as
/// long, with nothing after it.
pub fn code_blocks(reply: &str) -> Vec<CodeBlock> {
    let text = reply.replace("\r\n", "\n");
    let mut blocks = Vec::new();
    let mut open: Option<(char, usize, String, String)> = None;
    for line in text.lines() {
        let fence = parse_fence(line);
        match (&mut open, fence) {
            (None, Some((ch, len, info))) => {
                let language = info
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches('{')
                    .trim_start_matches('.')
                    .trim_end_matches('}')
                    .to_ascii_lowercase();
                open = Some((ch, len, language, String::new()));
            }
            (Some((ch, len, _, _)), Some((c, l, info)))
                if c == *ch && l >= *len && info.is_empty() =>
            {
                let (_, _, language, code) = open.take().expect("block is open");
                blocks.push(CodeBlock {
                    language,
                    code,
                    closed: true,
                });
            }
            (Some((_, _, _, code)), _) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, None) => {}
        }
    }
    if let Some((_, _, language, code)) = open {
        blocks.push(CodeBlock {
            language,
            code,
            closed: false,
        });
    }
    blocks
}

/// A fence line: its character, length and info string.
fn parse_fence(line: &str) -> Option<(char, usize, &str)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let ch = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = trimmed.chars().take_while(|c| *c == ch).count();
    if len < 3 {
        return None;
    }
    let info = trimmed[len..].trim();
    // A backtick fence's info string may not contain backticks (that is inline code).
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some((ch, len, info))
}

/// The one scheduler source in `reply`, or why there is not exactly one.
pub fn extract_scheduler(reply: &str) -> Result<Extracted, ExtractError> {
    let blocks = code_blocks(reply);
    if blocks.is_empty() {
        let looks_bare = SCHEDULER_MARKS.iter().any(|m| reply.contains(m));
        let hint = if looks_bare {
            " (the reply looks like bare C: put the whole file in one ```c block)"
        } else {
            ""
        };
        return Err(ExtractError::NoCode {
            hint: hint.to_string(),
        });
    }
    let mut schedulers: Vec<&CodeBlock> = Vec::new();
    for block in blocks.iter().filter(|b| b.is_scheduler()) {
        if !schedulers
            .iter()
            .any(|s| s.code.trim() == block.code.trim())
        {
            schedulers.push(block);
        }
    }
    match schedulers.as_slice() {
        [] => {
            let mut languages: Vec<&str> = blocks
                .iter()
                .map(|b| {
                    if b.language.is_empty() {
                        "no language"
                    } else {
                        b.language.as_str()
                    }
                })
                .collect();
            languages.dedup();
            Err(ExtractError::NotAScheduler {
                blocks: blocks.len(),
                languages: languages.join(", "),
            })
        }
        [one] if !one.closed => Err(ExtractError::Unterminated),
        [one] => Ok(Extracted {
            source: one.code.clone(),
            language: one.language.clone(),
            blocks: blocks.len(),
        }),
        several => Err(ExtractError::SeveralSchedulers {
            count: several.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHED: &str = "#include <scx/common.bpf.h>\n\
        char _license[] SEC(\"license\") = \"GPL\";\n\
        SCX_OPS_DEFINE(demo_ops, .name = \"demo\");\n";

    #[test]
    fn takes_the_one_scheduler_among_prose_and_other_blocks() {
        let reply = format!(
            "Here is the scheduler.\n\n```bash\nmake\n```\n\n```c\n{SCHED}```\n\nIt favours long tasks."
        );
        let e = extract_scheduler(&reply).unwrap();
        assert_eq!(e.source, SCHED);
        assert_eq!(e.language, "c");
        assert_eq!(e.blocks, 2);
    }

    #[test]
    fn accepts_bpf_and_bare_fences_and_struct_ops_markers() {
        let struct_ops = "SEC(\".struct_ops.link\")\nstruct sched_ext_ops x_ops = {};\n";
        for fence in ["```bpf", "```", "~~~c", "```C", "```c title=\"main.bpf.c\""] {
            let close = if fence.starts_with('~') { "~~~" } else { "```" };
            let reply = format!("{fence}\n{struct_ops}{close}\n");
            assert_eq!(
                extract_scheduler(&reply).unwrap().source,
                struct_ops,
                "{fence}"
            );
        }
    }

    #[test]
    fn crlf_is_normalised() {
        let reply = format!("Sure:\r\n```c\r\n{}```\r\n", SCHED.replace('\n', "\r\n"));
        let e = extract_scheduler(&reply).unwrap();
        assert_eq!(e.source, SCHED);
        assert!(!e.source.contains('\r'));
    }

    #[test]
    fn no_code_block_is_reported() {
        let e = extract_scheduler("I cannot help with that.").unwrap_err();
        assert_eq!(e.to_string(), "the model replied without a code block");
        let e = extract_scheduler(SCHED).unwrap_err();
        assert!(e.to_string().contains("bare C"), "{e}");
    }

    #[test]
    fn several_schedulers_are_rejected_but_identical_copies_count_once() {
        let other = SCHED.replace("demo", "other");
        let reply = format!("```c\n{SCHED}```\nor\n```c\n{other}```\n");
        let e = extract_scheduler(&reply).unwrap_err();
        assert_eq!(e, ExtractError::SeveralSchedulers { count: 2 });
        assert_eq!(
            e.to_string(),
            "reply has 2 scheduler sources; expected exactly one"
        );
        let reply = format!("```c\n{SCHED}```\nagain:\n```c\n{SCHED}```\n");
        assert!(extract_scheduler(&reply).is_ok());
    }

    #[test]
    fn code_that_is_not_a_scheduler_is_rejected() {
        let reply = "```c\nint main(void) { return 0; }\n```\n```python\nprint(1)\n```\n";
        let e = extract_scheduler(reply).unwrap_err();
        assert_eq!(
            e,
            ExtractError::NotAScheduler {
                blocks: 2,
                languages: "c, python".to_string()
            }
        );
        // A scheduler in a non-C block is not taken either.
        let reply = format!("```rust\n{SCHED}```\n");
        assert!(matches!(
            extract_scheduler(&reply),
            Err(ExtractError::NotAScheduler { .. })
        ));
    }

    #[test]
    fn unterminated_final_fence_is_reported() {
        let reply = format!("Here:\n```c\n{SCHED}void more(void) {{\n");
        let e = extract_scheduler(&reply).unwrap_err();
        assert_eq!(e, ExtractError::Unterminated);
        assert!(e.to_string().contains("cut off"));
        let blocks = code_blocks(&reply);
        assert_eq!(blocks.len(), 1);
        assert!(!blocks[0].closed);
    }

    #[test]
    fn inner_shorter_fences_and_inline_code_do_not_close_a_block() {
        let reply = format!("Use `x` here.\n````c\n{SCHED}```\nstill code\n````\n");
        let e = extract_scheduler(&reply).unwrap();
        assert_eq!(e.source, format!("{SCHED}```\nstill code\n"));
    }
}
