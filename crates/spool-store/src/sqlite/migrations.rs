//! The schema's migrations and how far a database has applied them.
//!
//! Kept by hand: `rusqlite_migration` would do the same job, but no
//! release of it builds against the rusqlite this workspace uses (0.43;
//! its newest, 2.6, wants 0.40). `PRAGMA user_version` counts the applied
//! migrations; each one runs in its own transaction with the count, so a
//! crash leaves the database at a whole migration.

use super::error::Error;
use rusqlite::Connection;

/// Schema migrations, applied in order. Append only: never edit or reorder
/// one that has shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_conversations.sql"),
    include_str!("../../migrations/sqlite/0003_agents.sql"),
    include_str!("../../migrations/sqlite/0004_conversation_responses.sql"),
    include_str!("../../migrations/sqlite/0005_api_agents.sql"),
];

/// How many migrations a database has applied.
fn applied(conn: &Connection) -> Result<usize, Error> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(usize::try_from(version).unwrap_or(0))
}

/// Applies the migrations `conn`'s database lacks.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    migrate_with(conn, MIGRATIONS)
}

fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<(), Error> {
    let from = applied(conn)?;
    if from > migrations.len() {
        return Err(crate::StoreError::Corrupt(format!(
            "the database has {from} migrations applied; this build knows {}: \
             it was written by a newer spool",
            migrations.len()
        ))
        .into());
    }
    for (i, sql) in migrations.iter().enumerate().skip(from) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    fn tables(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_new_database_gets_every_migration_and_a_second_run_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(applied(&conn).unwrap(), MIGRATIONS.len());
        let before = tables(&conn);
        assert!(before.contains(&"agents".to_owned()), "{before:?}");
        // Re-running would fail on CREATE TABLE if it applied anything again.
        migrate(&mut conn).unwrap();
        assert_eq!(tables(&conn), before);
    }

    #[test]
    fn only_the_missing_migrations_are_applied() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..1]).unwrap();
        assert_eq!(applied(&conn).unwrap(), 1);
        assert!(!tables(&conn).contains(&"conversations".to_owned()));
        migrate(&mut conn).unwrap();
        assert_eq!(applied(&conn).unwrap(), MIGRATIONS.len());
        assert!(tables(&conn).contains(&"conversations".to_owned()));
    }

    #[test]
    fn a_failing_migration_leaves_the_count_at_the_last_whole_one() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = [MIGRATIONS[0], "CREATE TABLE half (x); NOT SQL;"];
        assert!(migrate_with(&mut conn, &broken).is_err());
        assert_eq!(applied(&conn).unwrap(), 1);
        assert!(!tables(&conn).contains(&"half".to_owned()));
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn).map_err(StoreError::from),
            Err(StoreError::Corrupt(_))
        ));
    }
}
