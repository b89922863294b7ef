//! Memory search. Words: the query's words, stop words dropped, any of them matching after
//! stemming (a memory sharing one meaningful word with the query is found; a word that
//! matches nothing excludes nothing), ranked by relevance: FTS5's bm25 on SQLite, ts_rank on
//! PostgreSQL. User text never reaches either as query syntax: each word is reduced to
//! letters and digits before it is quoted. Meaning: where the project embeds, the query's
//! vector against the smith's, blended with the word ranking by reciprocal rank fusion.
//! A `score` orders the results of one answer and means nothing across answers: it is derived
//! from the rank (1 / rank for words, the fused value with meaning), never the engine's own
//! relevance value, because FTS5's statistics span every project's memories and a raw bm25
//! would tell one tenant how common a word is in the others'.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Statement};

use super::embeddings::{EMBED_DEADLINE, cosine, vector_of};
use super::{Memory, QUERY_MAX, SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX};
use crate::auth::Caller;
use crate::domain::smiths;
use crate::error::{Error, Result};
use crate::ids::{MemoryId, ProjectId, SmithId};
use crate::store::memory;

/// Words searched at most; the rest of a long query is ignored.
const TERMS_MAX: usize = 32;
const TERM_MAX: usize = 64;
/// Reciprocal rank fusion's constant.
const RRF_K: f64 = 60.0;
/// How many of each ranking the fusion considers.
const FUSION_DEPTH: u64 = 50;

/// English stop words (Snowball's list, the one PostgreSQL's `english` configuration drops),
/// dropped on both databases so both match the same words.
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours", "yourself", "yourselves",
    "he", "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself", "they", "them", "their",
    "theirs", "themselves", "what", "which", "who", "whom", "this", "that", "these", "those", "am", "is", "are",
    "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an",
    "the", "and", "but", "if", "or", "because", "as", "until", "while", "of", "at", "by", "for", "with", "about",
    "against", "between", "into", "through", "during", "before", "after", "above", "below", "to", "from", "up",
    "down", "in", "out", "on", "off", "over", "under", "again", "further", "then", "once", "here", "there", "when",
    "where", "why", "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "no",
    "nor", "not", "only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "don",
    "should", "now",
];

/// One search result: the memory and its score within this answer.
pub struct Scored {
    pub memory: memory::Model,
    pub score: f64,
}

/// The words of a query that are searched for: lowercase letters and digits, no stop words,
/// each once.
pub fn terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        let word: String = word.chars().take(TERM_MAX).collect::<String>().to_lowercase();
        if word.is_empty() || STOP_WORDS.contains(&word.as_str()) || terms.contains(&word) {
            continue;
        }
        terms.push(word);
        if terms.len() == TERMS_MAX {
            break;
        }
    }
    terms
}

/// The memory columns, read whole by a word search (the index columns left out).
const COLUMNS: &str = "m.id, m.project_id, m.smith_id, m.text, m.metadata, m.source, m.fingerprint, m.embedding, \
                       m.embedding_model, m.created_at, m.updated_at";

/// The smith's memories matching any of `terms`, best first, at most `limit`.
async fn by_words(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    smith_id: &SmithId,
    terms: &[String],
    limit: u64,
) -> Result<Vec<memory::Model>> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let statement = match backend {
        DbBackend::Sqlite => {
            // The owner column holds the smith's token; the text column any term. CROSS JOIN
            // keeps the index as the outer loop: with a plain JOIN SQLite walks the smith's
            // memories by index and runs the MATCH once per memory (1.2 ms at 30 memories,
            // against 0.2 ms).
            let quoted: Vec<String> = terms.iter().map(|term| format!("\"{term}\"")).collect();
            let query = format!("owner : \"{}\" AND text : ({})", owner_token(smith_id), quoted.join(" OR "));
            Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT {COLUMNS} FROM memories_fts CROSS JOIN memories m ON m.search_rowid = memories_fts.rowid
                     WHERE memories_fts MATCH ? AND m.smith_id = ? AND m.project_id = ?
                     ORDER BY bm25(memories_fts, 1.0, 0.0), m.id DESC LIMIT ?"
                ),
                [query.into(), smith_id.as_str().into(), project_id.as_str().into(), (limit as i64).into()],
            )
        }
        _ => Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT {COLUMNS} FROM memories m, websearch_to_tsquery('english', $1) AS query
                 WHERE m.smith_id = $2 AND m.project_id = $3 AND m.search_tsv @@ query
                 ORDER BY ts_rank(m.search_tsv, query, 1) DESC, m.id DESC LIMIT $4"
            ),
            [terms.join(" or ").into(), smith_id.as_str().into(), project_id.as_str().into(), (limit as i64).into()],
        ),
    };
    Ok(memory::Entity::find().from_raw_sql(statement).all(db).await?)
}

/// Results scored by their rank: 1, 1/2, 1/3…
fn by_rank(memories: impl IntoIterator<Item = memory::Model>) -> Vec<Scored> {
    memories.into_iter().enumerate().map(|(rank, memory)| Scored { memory, score: 1.0 / (rank as f64 + 1.0) }).collect()
}

/// The smith's token in the FTS5 `owner` column: its id's ULID and a trailing `0`, a digit,
/// so the Porter stemmer (which the column shares with `text`) leaves it whole. Written by
/// the insert trigger of `m0005_memory`.
fn owner_token(smith_id: &SmithId) -> String {
    let ulid: String =
        smith_id.as_str().trim_start_matches("smt_").chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{ulid}0")
}

impl Memory {
    /// Searches the smith's memories, if the caller sees the smith.
    pub async fn search(
        &self,
        caller: &Caller,
        smith_id: &SmithId,
        query: &str,
        limit: Option<u64>,
    ) -> Result<Vec<Scored>> {
        crate::domain::limits::text("query", Some(query), QUERY_MAX)?;
        let limit = limit.unwrap_or(SEARCH_LIMIT_DEFAULT);
        if !(1..=SEARCH_LIMIT_MAX).contains(&limit) {
            return Err(Error::invalid_param("limit", format!("limit must be between 1 and {SEARCH_LIMIT_MAX}.")));
        }
        smiths::get(&self.db, caller, smith_id).await?;
        self.search_smith(&caller.project_id, smith_id, query, limit, EMBED_DEADLINE).await
    }

    /// Searches one smith's memories (the smith already checked).
    pub(crate) async fn search_smith(
        &self,
        project_id: &ProjectId,
        smith_id: &SmithId,
        query: &str,
        limit: u64,
        deadline: Duration,
    ) -> Result<Vec<Scored>> {
        let terms = terms(query);
        let embeds = self.cached_embedding_settings(project_id).await?.is_some();
        let depth = if embeds { limit.max(FUSION_DEPTH) } else { limit };
        let words = by_words(&self.db, project_id, smith_id, &terms, depth).await?;
        let semantic = match embeds {
            true => match self.embed_text(project_id, query, deadline).await {
                Some(query) => self.by_meaning(project_id, smith_id, &query.model, &query.vector).await?,
                None => Vec::new(),
            },
            false => Vec::new(),
        };
        if semantic.is_empty() {
            return Ok(by_rank(words.into_iter().take(limit as usize)));
        }
        let lexical: Vec<(MemoryId, f64)> =
            words.iter().enumerate().map(|(rank, row)| (row.id.clone(), 1.0 / (rank as f64 + 1.0))).collect();
        let mut found: HashMap<MemoryId, memory::Model> = words.into_iter().map(|row| (row.id.clone(), row)).collect();
        let fused = fuse(&[lexical, semantic], limit as usize);
        let missing: Vec<MemoryId> =
            fused.iter().map(|(id, _)| id.clone()).filter(|id| !found.contains_key(id)).collect();
        found.extend(self.load(project_id, smith_id, missing).await?.into_iter().map(|row| (row.id.clone(), row)));
        Ok(fused.into_iter().filter_map(|(id, score)| Some(Scored { memory: found.remove(&id)?, score })).collect())
    }

    /// The smith's memories embedded by `model` and similar to `vector`, best first.
    /// Brute force: a smith keeps at most a thousand memories.
    async fn by_meaning(
        &self,
        project_id: &ProjectId,
        smith_id: &SmithId,
        model: &str,
        vector: &[f32],
    ) -> Result<Vec<(MemoryId, f64)>> {
        let rows: Vec<(MemoryId, Option<Vec<u8>>)> = memory::Entity::find()
            .select_only()
            .column(memory::Column::Id)
            .column(memory::Column::Embedding)
            .filter(memory::Column::ProjectId.eq(project_id.as_str()))
            .filter(memory::Column::SmithId.eq(smith_id.as_str()))
            .filter(memory::Column::EmbeddingModel.eq(model))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut scored: Vec<(MemoryId, f64)> = rows
            .into_iter()
            .filter_map(|(id, bytes)| Some((id, f64::from(cosine(vector, &vector_of(&bytes?))))))
            // Unrelated (or of another size: `dimensions` changed) is no match.
            .filter(|(_, similarity)| *similarity > 0.0)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        scored.truncate(FUSION_DEPTH as usize);
        Ok(scored)
    }

    /// The smith's memories with these ids.
    async fn load(&self, project_id: &ProjectId, smith_id: &SmithId, ids: Vec<MemoryId>) -> Result<Vec<memory::Model>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(memory::Entity::find()
            .filter(memory::Column::Id.is_in(ids.iter().map(MemoryId::as_str)))
            .filter(memory::Column::ProjectId.eq(project_id.as_str()))
            .filter(memory::Column::SmithId.eq(smith_id.as_str()))
            .all(&self.db)
            .await?)
    }
}

/// Reciprocal rank fusion: each ranking gives a memory 1 / (60 + rank).
fn fuse(rankings: &[Vec<(MemoryId, f64)>], limit: usize) -> Vec<(MemoryId, f64)> {
    let mut fused: HashMap<&MemoryId, f64> = HashMap::new();
    for ranking in rankings {
        for (rank, (id, _)) in ranking.iter().enumerate() {
            *fused.entry(id).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let mut fused: Vec<(MemoryId, f64)> = fused.into_iter().map(|(id, score)| (id.clone(), score)).collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    fused.truncate(limit);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_plain_words_without_syntax_or_stop_words() {
        assert_eq!(terms("What is my NAME?"), vec!["name"]);
        assert_eq!(terms("peanuts -allergy \"unbalanced OR NOT x*"), vec!["peanuts", "allergy", "unbalanced", "x"]);
        assert_eq!(terms("Ada ada ADA"), vec!["ada"]);
        assert!(terms("the of and").is_empty());
        let long: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(terms(&long).len(), TERMS_MAX);
    }

    #[test]
    fn fusion_rewards_agreement() {
        let id = |s: &str| MemoryId::from(s.to_owned());
        let words = vec![(id("mem_a"), 3.0), (id("mem_b"), 2.0)];
        let meaning = vec![(id("mem_b"), 0.9), (id("mem_c"), 0.8)];
        let fused = fuse(&[words, meaning], 10);
        assert_eq!(fused[0].0, id("mem_b"));
        assert_eq!(fused.len(), 3);
    }
}
