//! `inbox`: a small mail inbox per session, to show state shared by tools and a scenario,
//! and a reward made of weighted subscores.
//!
//! The scenario `triage_inbox` fills the session's inbox with a few messages, asks the
//! agent to archive the spam and reply to the message that needs an answer, and grades what
//! the tools did to the inbox plus the final summary.

use rollout_mcp::sdk::{
    Environment, Evaluation, NoArgs, Scenario, ScenarioContext, Tool, ToolContext, ToolFailure,
    ToolOutput,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, PoisonError};

/// The environment's name.
pub(crate) const NAME: &str = "inbox";

/// One message.
#[derive(Debug, Clone, Serialize)]
struct Message {
    id: u32,
    from: String,
    subject: String,
    body: String,
    archived: bool,
    reply: Option<String>,
    #[serde(skip)]
    spam: bool,
    #[serde(skip)]
    needs_reply: bool,
}

/// The session's inbox: tools change it, the scenario grades it.
#[derive(Debug, Default)]
struct Inbox(Mutex<Vec<Message>>);

impl Inbox {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<Message>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn update(&self, id: u32, f: impl FnOnce(&mut Message)) -> Result<ToolOutput, ToolFailure> {
        self.with(|messages| match messages.iter_mut().find(|m| m.id == id) {
            Some(message) => {
                f(message);
                Ok(ToolOutput::json(&*message))
            }
            None => Err(ToolFailure::new(format!("no message with id {id}"))),
        })
    }
}

#[derive(Deserialize, JsonSchema)]
struct MessageId {
    /// The message id, from `list_messages`.
    id: u32,
}

#[derive(Deserialize, JsonSchema)]
struct ReplyArgs {
    /// The message id, from `list_messages`.
    id: u32,
    /// The text of the reply.
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct TriageArgs {
    /// Who the agent works for (appears in the messages).
    #[serde(default = "default_owner")]
    owner: String,
}

fn default_owner() -> String {
    "Alex".into()
}

fn seed(owner: &str) -> Vec<Message> {
    let message = |id, from: &str, subject: &str, body: String, spam, needs_reply| Message {
        id,
        from: from.into(),
        subject: subject.into(),
        body,
        archived: false,
        reply: None,
        spam,
        needs_reply,
    };
    vec![
        message(
            1,
            "prizes@lucky-win.example",
            "You WON a cruise!!!",
            "Claim now, send your bank details.".into(),
            true,
            false,
        ),
        message(
            2,
            "sam@company.example",
            "Budget review",
            format!(
                "Hi {owner}, can you confirm you can join the budget review on Thursday at 10:00?"
            ),
            false,
            true,
        ),
        message(
            3,
            "newsletter@shop.example",
            "Weekly deals",
            "Unbeatable discounts on everything, click here.".into(),
            true,
            false,
        ),
        message(
            4,
            "it@company.example",
            "Maintenance window",
            "The VPN is down on Saturday from 08:00 to 12:00.".into(),
            false,
            false,
        ),
    ]
}

/// Builds the `inbox` environment.
pub fn inbox() -> Environment {
    Environment::new(NAME)
        .tool(Tool::with_context(
            "list_messages",
            "List the messages in the inbox that are not archived: id, sender and subject.",
            |_: NoArgs, context: ToolContext| async move {
                let listed = context.state::<Inbox>().with(|messages| {
                    messages
                        .iter()
                        .filter(|m| !m.archived)
                        .map(|m| serde_json::json!({"id": m.id, "from": m.from, "subject": m.subject}))
                        .collect::<Vec<_>>()
                });
                ToolOutput::json(&listed)
            },
        ))
        .tool(Tool::with_context(
            "read_message",
            "Read one message in full.",
            |args: MessageId, context: ToolContext| async move {
                context.state::<Inbox>().update(args.id, |_| {})
            },
        ))
        .tool(Tool::with_context(
            "archive_message",
            "Archive a message (for spam and anything that needs no action).",
            |args: MessageId, context: ToolContext| async move {
                context.state::<Inbox>().update(args.id, |m| m.archived = true)
            },
        ))
        .tool(Tool::with_context(
            "reply",
            "Reply to a message.",
            |args: ReplyArgs, context: ToolContext| async move {
                context.state::<Inbox>().update(args.id, |m| m.reply = Some(args.text))
            },
        ))
        .scenario(Scenario::new(
            "triage_inbox",
            "Archive the spam, reply to the message that needs an answer, and summarise what is left.",
            |args: TriageArgs, ctx: ScenarioContext| async move {
                let inbox = ctx.state::<Inbox>();
                inbox.with(|messages| *messages = seed(&args.owner));
                let answer = ctx
                    .prompt(format!(
                        "You manage {}'s inbox. Archive every spam message, reply to any message \
                         that asks {} a question, and finish with a one-line summary of what \
                         still needs attention.",
                        args.owner, args.owner
                    ))
                    .await;
                grade(&inbox, &answer.text())
            },
        ))
}

/// The reward: spam archived (0.4), the question answered (0.4), the summary mentions the
/// maintenance window that stays in the inbox (0.2); archiving a real message costs 0.2.
fn grade(inbox: &Inbox, summary: &str) -> Evaluation {
    inbox.with(|messages| {
        let spam = messages.iter().filter(|m| m.spam);
        let spam_total = spam.clone().count().max(1) as f64;
        let spam_archived = spam.filter(|m| m.archived).count() as f64 / spam_total;
        let replied = messages.iter().filter(|m| m.needs_reply).all(|m| m.reply.as_deref().is_some_and(|r| !r.trim().is_empty()));
        let replied = if replied { 1.0 } else { 0.0 };
        let summary_ok = if summary.to_lowercase().contains("vpn") || summary.to_lowercase().contains("maintenance") { 1.0 } else { 0.0 };
        let wrongly_archived = if messages.iter().any(|m| !m.spam && m.archived) { 1.0 } else { 0.0 };
        let reward = (0.4 * spam_archived + 0.4 * replied + 0.2 * summary_ok - 0.2 * wrongly_archived).clamp(0.0, 1.0);
        Evaluation::reward(reward)
            .with_content(format!(
                "spam archived {:.0}%, question answered: {}, summary mentions the maintenance: {}, real mail archived: {}",
                spam_archived * 100.0,
                replied == 1.0,
                summary_ok == 1.0,
                wrongly_archived == 1.0
            ))
            .with_subscore("spam_archived", 0.4, spam_archived)
            .with_subscore("question_answered", 0.4, replied)
            .with_subscore("summary", 0.2, summary_ok)
            .with_subscore("real_mail_archived", -0.2, wrongly_archived)
            .with_info("summary", summary)
    })
}
