-- Schema 1 (runs, lines, clawbacks; no version table) to schema 2: run inside one transaction.
-- Some files of schema 1 already have lines.dated_on (added before versions were kept).
alter table lines add column if not exists dated_on date;
alter table runs add column if not exists status varchar default 'done';
alter table runs add column if not exists digest varchar;
alter table runs add column if not exists gaps_allowed varchar;
create table schema_version (version integer not null);
create table publishing (
    run_id   varchar primary key,
    year_dir varchar not null,
    staging  varchar not null,
    names    varchar not null
);
