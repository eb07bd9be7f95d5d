//! Approvals of the owner's replies (GoToSocial's interaction policies; PROTOCOL.md §9). A
//! post whose `canReply` names the owner only among those it approves by hand
//! (`manualApproval`, GoToSocial 0.19's `approvalRequired`) or through a followers collection
//! takes replies that wait for its author: the reply shows "pending approval" until the
//! author's server sends an `Accept` whose `object` is the reply and whose `result` is the
//! approval (GoToSocial 0.19+; 0.17–0.18 sent no `result`, the `Accept` itself was the proof),
//! then carries it as `approvedBy` (sent again as an `Update`, which GoToSocial and its
//! followers require before they show it). A `Reject` marks it refused.

use rusqlite::{Connection, OptionalExtension, params};

use crate::activitypub::Site;
use crate::activitypub::fetch::{RemoteActor, id_of};
use crate::activitypub::incoming::Activity;
use crate::activitypub::interaction::Permission;
use crate::activitypub::refusal::InboxError;
use crate::context::Context;
use crate::urls::{Urls, same_origin};

/// Marks every live reply whose target asks for approval as pending, unless its answer is
/// already known (or it answered another post before an edit). Run after the replies' Creates
/// are queued. Returns how many were marked.
pub fn record_pending(conn: &mut Connection, urls: &Urls) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let todo: Vec<(i64, String)> = {
        let mut stmt = tx.prepare(
            "SELECT p.id, p.in_reply_to FROM posts p
             LEFT JOIN own_reply_approvals a ON a.post_id = p.id
             WHERE p.in_reply_to IS NOT NULL AND p.deleted_at IS NULL
               AND (a.post_id IS NULL OR a.target != p.in_reply_to)
             ORDER BY p.id",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut marked = 0;
    for (post_id, target) in todo {
        let asks = super::replying::permission(&tx, urls, &target, "canReply")?
            == Some(Permission::Approval);
        if asks {
            tx.execute(
                "INSERT INTO own_reply_approvals (post_id, target, state, updated_at)
                 VALUES (?1, ?2, 'pending', ?3)
                 ON CONFLICT (post_id) DO UPDATE SET target = ?2, state = 'pending',
                     approved_by = NULL, updated_at = ?3",
                params![post_id, target, crate::times::now()],
            )?;
            marked += 1;
        } else {
            // Edited to answer a post that asks nothing: the old answer no longer applies.
            tx.execute(
                "DELETE FROM own_reply_approvals WHERE post_id = ?1",
                [post_id],
            )?;
        }
    }
    tx.commit()?;
    Ok(marked)
}

/// An `Accept` or `Reject` of one of the owner's replies by the author of the post it
/// answers. `Ok(false)`: not about a reply of the owner's to this signer (the caller tries
/// follows next).
pub async fn answered(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<bool, InboxError> {
    let Some(object) = id_of(&activity.object).map(str::to_string) else {
        return Ok(false);
    };
    let Some(slug) = super::store::local_post_slug(&ctx.urls, &object) else {
        return Ok(false);
    };
    let approved = activity.kind == "Accept";
    // GoToSocial 0.19+ points `result` at the approval; 0.17–0.18 sent the Accept's own id as
    // the proof. Either must sit on the author's server, as the Accept does.
    let approval = activity
        .raw
        .get("result")
        .and_then(id_of)
        .unwrap_or(&activity.id)
        .to_string();
    if approved && (approval.len() > 2048 || !same_origin(&approval, &signer.id)) {
        return Err(InboxError::BadActivity(
            "the approval of a reply must be on the approving server".into(),
        ));
    }
    let (signer_id, config, urls) = (signer.id.clone(), ctx.config.clone(), ctx.urls.clone());
    let changed = ctx
        .db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let found: Option<(i64, Option<String>)> = tx
                .query_row(
                    "SELECT id, in_reply_to FROM posts WHERE slug = ?1 AND deleted_at IS NULL",
                    [&slug],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((post_id, Some(target))) = found else {
                return Ok(None);
            };
            // Only the answered post's author speaks for it.
            let author = super::replying::known_author(&tx, &urls, &target)?;
            if author.as_deref() != Some(signer_id.as_str()) {
                return Ok(None);
            }
            let (state, by) = if approved {
                ("approved", Some(approval))
            } else {
                ("rejected", None)
            };
            let before: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT state, approved_by FROM own_reply_approvals
                     WHERE post_id = ?1 AND target = ?2",
                    params![post_id, target],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if before.as_ref().map(|(s, b)| (s.as_str(), b)) == Some((state, &by)) {
                // A repeated answer changes nothing and sends nothing.
                return Ok(Some(false));
            }
            // An approval is taken once, while the reply waits (or before Hortus knew it had
            // to): each one sends an Update to everyone the reply reached, so the answered
            // server must not be able to make Hortus send them again and again with new
            // `result`s or Reject/Accept flips.
            if approved && before.as_ref().is_some_and(|(s, _)| s != "pending") {
                return Ok(Some(false));
            }
            tx.execute(
                "INSERT INTO own_reply_approvals (post_id, target, state, approved_by, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (post_id) DO UPDATE SET target = ?2, state = ?3, approved_by = ?4,
                     updated_at = ?5",
                params![post_id, target, state, by, crate::times::now()],
            )?;
            if approved {
                let site = Site {
                    config: &config,
                    urls: &urls,
                };
                super::quoting::send_update(&tx, &site, post_id, "approval")?;
            }
            tx.commit()?;
            Ok::<_, InboxError>(Some(approved))
        })
        .await?;
    if changed == Some(true) {
        crate::delivery::wake_workers();
    }
    Ok(changed.is_some())
}

/// One of the owner's replies with an approval state, for `hortus inbox`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyState {
    pub slug: String,
    pub target: String,
    pub state: String,
    pub approved_by: Option<String>,
    pub updated_at: String,
}

/// Every reply of the owner's that waits for, got or was refused an approval, newest first.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<ReplyState>> {
    let mut stmt = conn.prepare(
        "SELECT p.slug, a.target, a.state, a.approved_by, a.updated_at
         FROM own_reply_approvals a JOIN posts p ON p.id = a.post_id
         WHERE p.deleted_at IS NULL ORDER BY a.updated_at DESC, a.post_id DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ReplyState {
            slug: r.get(0)?,
            target: r.get(1)?,
            state: r.get(2)?,
            approved_by: r.get(3)?,
            updated_at: r.get(4)?,
        })
    })?;
    rows.collect()
}
