-- Schema 1 (runs, lines, clawbacks; no version table) to schema 2: run inside one transaction.
alter table lines add column dated_on date;
alter table runs add column status varchar default 'done';
alter table runs add column digest varchar;
alter table runs add column gaps_allowed varchar;
create table schema_version (version integer not null);
create table publishing (
    run_id   varchar primary key,
    year_dir varchar not null,
    staging  varchar not null,
    names    varchar not null
);
