/*
 * Quickstart for the C ABI of s3db (include/s3db.h, libs3db).
 *
 *   examples/c/run.sh [connection-url]
 *
 * The URL comes from argv[1], then $S3DB_URL, else a fresh temporary directory (file://).
 * Examples: memory://demo, file:///tmp/s3db-demo,
 *           http://KEY:SECRET@127.0.0.1:5055/bucket/prefix, s3://KEY:SECRET@bucket/prefix
 */
#define _XOPEN_SOURCE 700
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3db.h"

/* Every s3db call returns a status; on failure the message is kept per thread. */
#define TRY(call)                                                                     \
  do {                                                                                \
    int status_ = (call);                                                             \
    if (status_ != S3DB_OK) {                                                         \
      fprintf(stderr, "[c] %s failed: %s (%d): %s\n", #call, s3db_status_name(status_), \
              status_, s3db_last_error());                                            \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

/* The id of a record's JSON text, which always starts {"id":"…" (ids need no escaping). */
static void id_of(const char *record, char *id, size_t size) {
  const char *start = strstr(record, "\"id\":\"");
  size_t n = 0;
  if (start != NULL) {
    start += 6;
    while (start[n] != '\0' && start[n] != '"') n++;
  }
  snprintf(id, size, "%.*s", (int)n, start ? start : "");
}

/* The URL without its user-info part: credentials are never printed. */
static void print_url(const char *url) {
  const char *scheme = strstr(url, "://");
  const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
  const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
  if (at != NULL && (slash == NULL || at < slash))
    printf("[c] connected to %.*s***%s\n", (int)(scheme + 3 - url), url, at);
  else
    printf("[c] connected to %s\n", url);
}

int main(int argc, char **argv) {
  char url[4096];
  const char *arg = argc > 1 ? argv[1] : getenv("S3DB_URL");
  if (arg != NULL && *arg != '\0') {
    snprintf(url, sizeof url, "%s", arg);
  } else {
    char dir[] = "/tmp/s3db-quickstart-c-XXXXXX";
    if (mkdtemp(dir) == NULL) {
      perror("mkdtemp");
      return 1;
    }
    snprintf(url, sizeof url, "file://%s", dir);
  }

  s3db_database_t *db = NULL;
  TRY(s3db_connect(url, &db));
  print_url(url);

  s3db_resource_t *users = NULL;
  TRY(s3db_create_resource(db, "users", "{\"name\":\"string|required\",\"email\":\"string|optional\"}",
                           &users));

  /* Records are JSON text in and out; returned strings are freed with s3db_string_free. */
  char *ada = NULL, id[256];
  TRY(s3db_insert(users, "{\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\"}", &ada));
  printf("[c] inserted %s\n", ada);
  id_of(ada, id, sizeof id);
  s3db_string_free(ada);

  char *got = NULL;
  TRY(s3db_get(users, id, &got));
  printf("[c] read     %s\n", got);
  s3db_string_free(got);

  char *updated = NULL;
  TRY(s3db_update(users, id, "{\"email\":\"ada@analytical.engine\"}", &updated));
  printf("[c] updated  %s\n", updated);
  s3db_string_free(updated);

  uint64_t count = 0;
  TRY(s3db_count(users, &count));
  printf("[c] count    %" PRIu64 "\n", count);

  /* Errors are statuses: a second insert of the same id is S3DB_ERR_ALREADY_EXISTS. */
  char duplicate[512];
  snprintf(duplicate, sizeof duplicate, "{\"id\":\"%s\",\"name\":\"Someone else\"}", id);
  int status = s3db_insert(users, duplicate, NULL);
  printf("[c] duplicate insert refused: %s (%d): %s\n", s3db_status_name(status), status,
         s3db_last_error());

  s3db_lock_t *lock = NULL;
  uint64_t token = 0;
  TRY(s3db_lock(db, "quickstart", 10000 /* ttl ms */, 5000 /* timeout ms */, &lock));
  TRY(s3db_lock_fencing_token(lock, &token));
  printf("[c] lock 'quickstart' held with fencing token %" PRIu64 "\n", token);
  TRY(s3db_lock_release(lock));
  s3db_lock_free(lock);

  s3db_sequence_t *invoices = NULL;
  int64_t values[3];
  TRY(s3db_sequence(db, "invoices", 1, 1, &invoices));
  for (int i = 0; i < 3; i++) TRY(s3db_sequence_next(invoices, &values[i]));
  printf("[c] sequence 'invoices' gave [%" PRId64 ", %" PRId64 ", %" PRId64 "]\n", values[0],
         values[1], values[2]);
  s3db_sequence_free(invoices);

  char *stats = NULL;
  TRY(s3db_stats(db, &stats));
  printf("[c] requests %s\n", stats);
  s3db_string_free(stats);

  s3db_resource_free(users);
  s3db_database_free(db);
  return 0;
}
