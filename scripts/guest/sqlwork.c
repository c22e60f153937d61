/*
 * sqlwork: the guest's database workload for the crash-consistency proof (tests/nbd_test.go).
 *
 * It commits numbered transactions into a SQLite database on the disk under test, each durable before
 * COMMIT returns (rollback journal, synchronous=EXTRA: FULL alone leaves the journal's unlink, which is
 * the commit, unsynced, so a crash right after COMMIT can roll the transaction back), and prints
 * "STANDBY-TXN <n>" on stdout only after the commit returned: a line on the console means transaction n
 * is durable on the disk. Each transaction
 * inserts a row with a blob of varying size and updates a running total, so a torn or reordered write
 * shows up as a failed integrity check or a total that does not match its rows.
 *
 * usage: sqlwork <database> [transactions, 0 = until killed] [pause between transactions, ms]
 *        sqlwork --check <database>: the database's own integrity check, and the running total against
 *        the rows; prints "ok" and exits 0 when both hold (a drill's check), else what is wrong, exit 1.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(sqlite3 *db, const char *what) {
	fprintf(stderr, "STANDBY-TXN-FAIL %s: %s\n", what, db ? sqlite3_errmsg(db) : "no database");
	exit(1);
}

static void run(sqlite3 *db, const char *sql) {
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die(db, sql);
}

static int check(const char *path) {
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die(db, "open");
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
		die(db, "integrity_check");
	int ok = 1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *row = (const char *)sqlite3_column_text(st, 0);
		if (row == NULL || strcmp(row, "ok") != 0) {
			printf("integrity: %s\n", row ? row : "(null)");
			ok = 0;
		}
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM txn) = rows AND (SELECT coalesce(sum(size), 0) FROM txn) = bytes, rows FROM total WHERE k = 0", -1, &st, NULL) != SQLITE_OK)
		die(db, "total");
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 1) {
		printf("total: the running total does not match the rows\n");
		ok = 0;
	} else {
		fprintf(stderr, "%lld transactions\n", (long long)sqlite3_column_int64(st, 1));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (ok)
		printf("ok\n");
	return ok ? 0 : 1;
}

int main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "--check") == 0)
		return check(argv[2]);
	if (argc < 2) {
		fprintf(stderr, "usage: sqlwork <database> [transactions]\n");
		return 2;
	}
	long limit = argc > 2 ? atol(argv[2]) : 0;
	long pause_ms = argc > 3 ? atol(argv[3]) : 0;
	struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
	sqlite3 *db = NULL;
	if (sqlite3_open(argv[1], &db) != SQLITE_OK)
		die(db, "open");
	run(db, "PRAGMA journal_mode=DELETE");
	run(db, "PRAGMA synchronous=EXTRA");
	/* the schema in one transaction: a copy of the disk has all of it or none */
	run(db, "BEGIN IMMEDIATE");
	run(db, "CREATE TABLE IF NOT EXISTS txn(id INTEGER PRIMARY KEY, size INTEGER NOT NULL, body BLOB NOT NULL)");
	run(db, "CREATE TABLE IF NOT EXISTS total(k INTEGER PRIMARY KEY, rows INTEGER NOT NULL, bytes INTEGER NOT NULL)");
	run(db, "INSERT OR IGNORE INTO total VALUES(0, 0, 0)");
	run(db, "COMMIT");
	sqlite3_stmt *ins, *upd;
	if (sqlite3_prepare_v2(db, "INSERT INTO txn(id, size, body) VALUES(?1, ?2, randomblob(?2))", -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE total SET rows = rows + 1, bytes = bytes + ?1 WHERE k = 0", -1, &upd, NULL) != SQLITE_OK)
		die(db, "prepare");
	sqlite3_stmt *next;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) + 1 FROM txn", -1, &next, NULL) != SQLITE_OK || sqlite3_step(next) != SQLITE_ROW)
		die(db, "next id");
	long id = sqlite3_column_int64(next, 0);
	sqlite3_finalize(next);
	for (long n = 0; limit == 0 || n < limit; n++, id++) {
		int size = 500 + (int)((id * 7919) % 12000); /* 500 B to 12 KB: rows span pages and overflow pages */
		run(db, "BEGIN IMMEDIATE");
		sqlite3_bind_int64(ins, 1, id);
		sqlite3_bind_int(ins, 2, size);
		sqlite3_bind_int(upd, 1, size);
		if (sqlite3_step(ins) != SQLITE_DONE || sqlite3_step(upd) != SQLITE_DONE)
			die(db, "write");
		sqlite3_reset(ins);
		sqlite3_reset(upd);
		run(db, "COMMIT");
		printf("STANDBY-TXN %ld\n", id);
		fflush(stdout);
		if (pause_ms > 0)
			nanosleep(&pause, NULL);
	}
	sqlite3_close(db);
	return 0;
}
