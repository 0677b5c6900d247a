"""Ordered, named schema migrations. Append new ones; never edit one that has shipped."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE evals (
            id TEXT PRIMARY KEY,
            name TEXT,
            definition TEXT NOT NULL,
            definition_hash TEXT NOT NULL UNIQUE,
            source_file TEXT,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            eval_id TEXT NOT NULL REFERENCES evals(id),
            name TEXT,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            data_source TEXT,
            config TEXT NOT NULL,
            metadata TEXT,
            error TEXT,
            created_at INTEGER NOT NULL,
            started_at REAL,
            finished_at REAL
        );
        CREATE INDEX runs_eval ON runs(eval_id);
        CREATE TABLE run_items (
            run_id TEXT NOT NULL REFERENCES runs(id),
            idx INTEGER NOT NULL,
            item TEXT NOT NULL,
            sample TEXT,
            source_file TEXT,
            source_line INTEGER,
            PRIMARY KEY (run_id, idx)
        ) WITHOUT ROWID;
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            idx INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            status TEXT NOT NULL,
            model TEXT,
            input TEXT,
            output TEXT,
            choices TEXT,
            finish_reason TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cached_tokens INTEGER,
            latency_ms REAL,
            cached INTEGER NOT NULL DEFAULT 0,
            cache_key TEXT,
            params TEXT,
            error TEXT,
            created_at REAL NOT NULL,
            UNIQUE (run_id, idx, epoch)
        );
        CREATE TABLE model_calls (
            id INTEGER PRIMARY KEY,
            run_id TEXT,
            idx INTEGER,
            epoch INTEGER,
            purpose TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            base_url TEXT,
            attempt INTEGER NOT NULL,
            status TEXT NOT NULL,
            request TEXT,
            response TEXT,
            error TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_ms REAL,
            created_at REAL NOT NULL
        );
        CREATE INDEX model_calls_run ON model_calls(run_id, idx, epoch);
        CREATE TABLE scores (
            run_id TEXT NOT NULL REFERENCES runs(id),
            idx INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            criterion INTEGER NOT NULL,
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            grader_hash TEXT NOT NULL,
            score REAL,
            passed INTEGER,
            result TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, idx, epoch, criterion)
        ) WITHOUT ROWID;
        CREATE TABLE output_items (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            idx INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            status TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            UNIQUE (run_id, idx, epoch)
        );
        CREATE TABLE response_cache (
            key TEXT PRIMARY KEY,
            response TEXT NOT NULL,
            created_at REAL NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0002_fine_tuning",
        """
        CREATE TABLE ft_jobs (
            id TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            status TEXT NOT NULL,
            model TEXT NOT NULL,
            method TEXT NOT NULL,
            training_file TEXT NOT NULL,
            validation_file TEXT,
            hyperparameters TEXT NOT NULL,
            grader TEXT,
            options TEXT NOT NULL,
            seed INTEGER NOT NULL,
            suffix TEXT,
            metadata TEXT,
            output_dir TEXT NOT NULL,
            fine_tuned_model TEXT,
            trained_tokens INTEGER,
            error TEXT,
            requested TEXT,
            pid INTEGER,
            started_at INTEGER,
            finished_at INTEGER
        );
        CREATE TABLE ft_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            job_id TEXT NOT NULL REFERENCES ft_jobs(id),
            created_at INTEGER NOT NULL,
            level TEXT NOT NULL,
            type TEXT NOT NULL,
            message TEXT NOT NULL,
            data TEXT
        );
        CREATE INDEX ft_events_job ON ft_events(job_id, seq);
        CREATE TABLE ft_checkpoints (
            id TEXT PRIMARY KEY,
            job_id TEXT NOT NULL REFERENCES ft_jobs(id),
            created_at INTEGER NOT NULL,
            step INTEGER NOT NULL,
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            metrics TEXT,
            removed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX ft_checkpoints_job ON ft_checkpoints(job_id, step);
        """,
    ),
    (
        "0003_run_runner",
        """
        ALTER TABLE runs ADD COLUMN runner TEXT;
        """,
    ),
    (
        "0004_harvest",
        """
        CREATE TABLE harvest_records (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            api TEXT NOT NULL,
            tags TEXT NOT NULL,
            created_at REAL NOT NULL,
            imported_at REAL NOT NULL,
            model TEXT,
            messages TEXT NOT NULL,
            output TEXT,
            params TEXT NOT NULL,
            request TEXT,
            response TEXT,
            status INTEGER,
            error TEXT,
            latency_ms REAL,
            ttft_ms REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            feedback REAL,
            metadata TEXT NOT NULL,
            redacted INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            occurrences INTEGER NOT NULL DEFAULT 1,
            near_dup_of TEXT,
            cluster_id INTEGER
        );
        CREATE INDEX harvest_records_hash ON harvest_records(content_hash);
        CREATE INDEX harvest_records_cluster ON harvest_records(cluster_id);
        CREATE INDEX harvest_records_source ON harvest_records(source, created_at);
        CREATE TABLE harvest_origins (
            origin_key TEXT PRIMARY KEY,
            record_id TEXT NOT NULL REFERENCES harvest_records(id),
            source TEXT NOT NULL,
            ref TEXT,
            created_at REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE harvest_clusters (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            template TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE datasets (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            content_hash TEXT NOT NULL UNIQUE,
            path TEXT,
            provenance TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    ),
    (
        "0005_inputs",
        """
        CREATE TABLE inputs (
            hash TEXT PRIMARY KEY,
            body TEXT NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0006_trajectory",
        """
        ALTER TABLE samples ADD COLUMN trajectory TEXT;
        """,
    ),
    (
        "0007_turns",
        """
        CREATE TABLE turns (
            run_id TEXT NOT NULL REFERENCES runs(id),
            idx INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            turn INTEGER NOT NULL,
            body TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, idx, epoch, turn)
        ) WITHOUT ROWID;
        """,
    ),
    (
        # 1 marks an item whose long
        # values are {"$input": hash} references into ``inputs`` (Store._share_item)
        "0008_run_items_shared",
        """
        ALTER TABLE run_items ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
        """,
    ),
]
