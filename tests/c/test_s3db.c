/*
 * Tests of the C ABI (include/s3db.h) against memory://, file://<temp dir> and, when
 * S3DB_TEST_S3_URL is set, <S3DB_TEST_S3_URL>/<random prefix>.
 *
 *   tests/c/run.sh          builds libs3db, then this program linked shared and static, and runs both
 *
 * Exit status 0 when every check passed; each failure is printed with its line.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3db.h"

static const char *backend = "";
static int checks, failures;

static void fail_at(int line, const char *fmt, ...) {
  va_list ap;
  failures++;
  printf("FAIL [%s] test_s3db.c:%d: ", backend, line);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

#define CHECK(cond)                                                      \
  do {                                                                   \
    checks++;                                                            \
    if (!(cond)) fail_at(__LINE__, "%s", #cond);                         \
  } while (0)

#define EXPECT_STATUS(expected, call)                                              \
  do {                                                                             \
    int st_ = (call);                                                              \
    checks++;                                                                      \
    if (st_ != (expected))                                                         \
      fail_at(__LINE__, "%s -> %d %s (\"%s\"), expected %d %s", #call, st_,        \
              s3db_status_name(st_), s3db_last_error(), (expected),                \
              s3db_status_name(expected));                                         \
  } while (0)

#define EXPECT_OK(call) EXPECT_STATUS(S3DB_OK, call)

#define EXPECT_CONTAINS(text, needle)                                               \
  do {                                                                              \
    const char *t_ = (text);                                                        \
    checks++;                                                                       \
    if (t_ == NULL || strstr(t_, (needle)) == NULL)                                 \
      fail_at(__LINE__, "%s = %s does not contain %s", #text, t_ ? t_ : "(null)", \
              (needle));                                                            \
  } while (0)

#define EXPECT_STR(text, expected)                                                     \
  do {                                                                                 \
    const char *t_ = (text);                                                           \
    checks++;                                                                          \
    if (t_ == NULL || strcmp(t_, (expected)) != 0)                                     \
      fail_at(__LINE__, "%s = %s, expected %s", #text, t_ ? t_ : "(null)", (expected)); \
  } while (0)

#define EXPECT_U64(value, expected)                                                       \
  do {                                                                                    \
    unsigned long long v_ = (unsigned long long)(value), e_ = (unsigned long long)(expected); \
    checks++;                                                                             \
    if (v_ != e_) fail_at(__LINE__, "%s = %llu, expected %llu", #value, v_, e_);          \
  } while (0)

/* Requests since the last s3db_reset_stats, compared kind by kind. */
#define EXPECT_REQUESTS(db, g, h, p, c, d, l)                                                 \
  do {                                                                                        \
    s3db_stats_t s_ = {0};                                                                    \
    EXPECT_OK(s3db_request_stats((db), &s_));                                                 \
    checks++;                                                                                 \
    if (s_.get != (g) || s_.head != (h) || s_.put != (p) || s_.copy != (c) ||                 \
        s_.delete_ != (d) || s_.list != (l))                                                  \
      fail_at(__LINE__,                                                                       \
              "requests get=%llu head=%llu put=%llu copy=%llu delete=%llu list=%llu, "        \
              "expected %d %d %d %d %d %d",                                                   \
              (unsigned long long)s_.get, (unsigned long long)s_.head,                        \
              (unsigned long long)s_.put, (unsigned long long)s_.copy,                        \
              (unsigned long long)s_.delete_, (unsigned long long)s_.list, (g), (h), (p),     \
              (c), (d), (l));                                                                 \
  } while (0)

static void random_hex(char *out, size_t bytes) {
  unsigned char buf[32];
  FILE *f = fopen("/dev/urandom", "rb");
  size_t n = f ? fread(buf, 1, bytes, f) : 0;
  if (f) fclose(f);
  for (size_t i = 0; i < bytes; i++) {
    unsigned v = i < n ? buf[i] : (unsigned)(rand() ^ getpid()) & 0xff;
    sprintf(out + 2 * i, "%02x", v);
  }
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Waiting for _async callbacks                                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int status;
  char *text; /* result JSON or error message (copied) */
  void *handle; /* for connect / lock callbacks */
  pthread_t thread;
  /* for the callback that calls a blocking function */
  const s3db_resource_t *res;
  int inner_status;
  uint64_t inner_count;
} waiter_t;

static void waiter_init(waiter_t *w) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
}

static void waiter_finish(waiter_t *w, int status, const char *text, void *handle) {
  pthread_mutex_lock(&w->mu);
  w->status = status;
  w->text = strdup(text ? text : "(null)");
  w->handle = handle;
  w->thread = pthread_self();
  w->done++;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

/* 1 when the callback ran (exactly once), 0 after 30 s. */
static int waiter_wait(waiter_t *w) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 30;
  pthread_mutex_lock(&w->mu);
  while (!w->done) {
    if (pthread_cond_timedwait(&w->cv, &w->mu, &deadline) == ETIMEDOUT) break;
  }
  int done = w->done;
  pthread_mutex_unlock(&w->mu);
  return done == 1;
}

static void waiter_destroy(waiter_t *w) {
  free(w->text);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
}

static void on_json(void *user_data, int status, const char *result) {
  waiter_finish(user_data, status, result, NULL);
}

/* A callback that calls a blocking s3db function from the runtime thread it runs on. */
static void on_json_then_count(void *user_data, int status, const char *result) {
  waiter_t *w = user_data;
  w->inner_status = s3db_count(w->res, &w->inner_count);
  waiter_finish(w, status, result, NULL);
}

/* Keeps s3db_last_error_details() of the runtime thread the callback runs on, in handle. */
static void on_json_details(void *user_data, int status, const char *result) {
  const char *details = s3db_last_error_details();
  waiter_finish(user_data, status, result, details ? strdup(details) : NULL);
}

static void on_db(void *user_data, int status, s3db_database_t *db, const char *error) {
  waiter_finish(user_data, status, error, db);
}

static void on_lock(void *user_data, int status, s3db_lock_t *lock, const char *error) {
  waiter_finish(user_data, status, error, lock);
}

#define EXPECT_CALLBACK(w, expected_status)                                                 \
  do {                                                                                      \
    checks++;                                                                               \
    if (!waiter_wait(w))                                                                    \
      fail_at(__LINE__, "callback did not run exactly once within 30 s");                  \
    else if ((w)->status != (expected_status))                                              \
      fail_at(__LINE__, "callback status %d %s (\"%s\"), expected %d", (w)->status,         \
              s3db_status_name((w)->status), (w)->text, (expected_status));                 \
    CHECK(!pthread_equal((w)->thread, pthread_self()));                                     \
  } while (0)

/* ------------------------------------------------------------------------------------------ */
/* with_lock bodies and concurrent sequence users                                             */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  const s3db_database_t *db;
  int calls;
  uint64_t token;
  int result;
  int inner_status;
} with_lock_state;

static int with_lock_body(const s3db_lock_t *lock, void *user_data) {
  with_lock_state *st = user_data;
  st->calls++;
  s3db_lock_fencing_token(lock, &st->token);
  /* The lock is held: a second acquisition from inside must fail. */
  s3db_lock_t *again = NULL;
  st->inner_status = s3db_lock(st->db, "wl", 10000, 0, &again);
  s3db_lock_free(again);
  return st->result;
}

#define SEQ_THREADS 4
#define SEQ_PER_THREAD 8

typedef struct {
  const s3db_sequence_t *seq;
  int64_t values[SEQ_PER_THREAD];
  int failures;
} seq_worker;

static void *seq_worker_main(void *arg) {
  seq_worker *w = arg;
  for (int i = 0; i < SEQ_PER_THREAD; i++) {
    if (s3db_sequence_next(w->seq, &w->values[i]) != S3DB_OK) w->failures++;
  }
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------------------------ */
/* The suite, run once per backend                                                            */
/* ------------------------------------------------------------------------------------------ */

static void test_arguments(s3db_database_t *db, s3db_resource_t *res) {
  const char *bad = "\xff\xfe";
  s3db_database_t *out_db = (s3db_database_t *)1;
  char *out = (char *)1;
  uint64_t n = 0;
  bool flag = false;

  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect(NULL, &out_db));
  EXPECT_CONTAINS(s3db_last_error(), "url is NULL");
  EXPECT_U64(s3db_last_error_code(), S3DB_ERR_INVALID_ARGUMENT);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect("memory://x", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect(bad, &out_db));
  EXPECT_CONTAINS(s3db_last_error(), "UTF-8");
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect("nope://where", &out_db));
  CHECK(out_db == NULL);

  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_insert(NULL, "{}", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_insert(res, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_insert(res, bad, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_insert(res, "{\"name\":", &out));
  EXPECT_CONTAINS(s3db_last_error(), "JSON");
  CHECK(out == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get(res, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get(res, bad, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get(res, "u1", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_update(res, "u1", NULL, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_delete(NULL, "u1"));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_exists(res, "u1", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_count(NULL, &n));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_count(res, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_list_ids(res, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_create_resource(db, "x", NULL, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_create_resource(db, bad, "{}", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_stats(NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_reset_stats(NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock(NULL, "l", 1000, 0, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock_release(NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock_fencing_token(NULL, &n));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_with_lock(db, "l", 1000, 0, NULL, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_sequence_next(NULL, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_sequence_current(NULL, NULL, &flag));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_insert_async(res, "{}", NULL, NULL));
  EXPECT_CONTAINS(s3db_last_error(), "callback is NULL");
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get_async(NULL, "u1", on_json, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect_async(bad, on_db, NULL));

  /* Invalid ids and names. */
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get(res, "a/b", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_insert(res, "{\"id\":\"a/b\",\"name\":\"x\"}", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_delete(res, "a/b"));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get(res, "", &out));
  s3db_resource_t *r = NULL;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_resource(db, "a=b", &r));

  /* NULL is fine for every _free and for s3db_string_free. */
  s3db_database_free(NULL);
  s3db_resource_free(NULL);
  s3db_lock_free(NULL);
  s3db_sequence_free(NULL);
  s3db_string_free(NULL);

  /* Status names. */
  EXPECT_STR(s3db_status_name(S3DB_OK), "OK");
  EXPECT_STR(s3db_status_name(S3DB_ERR_NOT_FOUND), "NOT_FOUND");
  EXPECT_STR(s3db_status_name(S3DB_ERR_LOCK_NOT_ACQUIRED), "LOCK_NOT_ACQUIRED");
  EXPECT_STR(s3db_status_name(S3DB_ERR_INTERNAL), "INTERNAL");
  EXPECT_STR(s3db_status_name(12345), "UNKNOWN");
}

static void test_records(const char *url, s3db_database_t *db, s3db_resource_t *res) {
  char *out = NULL;
  uint64_t n = 0;
  bool flag = false;

  /* insert = 1 PUT */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_insert(res, "{\"id\":\"u1\",\"name\":\"Ada\",\"email\":\"ada@example.com\"}", &out));
  CHECK(out != NULL && strncmp(out, "{\"id\":\"u1\",", 11) == 0); /* the id comes first */
  EXPECT_CONTAINS(out, "\"name\":\"Ada\"");
  EXPECT_CONTAINS(out, "\"email\":\"ada@example.com\"");
  EXPECT_STR(s3db_last_error(), "");
  EXPECT_U64(s3db_last_error_code(), S3DB_OK);
  s3db_string_free(out);
  EXPECT_REQUESTS(db, 0, 0, 1, 0, 0, 0);

  /* The same counters as JSON. */
  EXPECT_OK(s3db_stats(db, &out));
  EXPECT_STR(out, "{\"get\":0,\"head\":0,\"put\":1,\"copy\":0,\"delete\":0,\"list\":0}");
  s3db_string_free(out);

  /* duplicate insert → ALREADY_EXISTS; output left NULL */
  out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_ALREADY_EXISTS,
                s3db_insert(res, "{\"id\":\"u1\",\"name\":\"Again\"}", &out));
  CHECK(out == NULL);
  EXPECT_U64(s3db_last_error_code(), S3DB_ERR_ALREADY_EXISTS);
  EXPECT_CONTAINS(s3db_last_error(), "already exists");

  /* generated id, no output wanted */
  EXPECT_OK(s3db_insert(res, "{\"name\":\"Grace\"}", NULL));

  /* validation: fields are required unless |optional; a failure names the field */
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_insert(res, "{\"email\":\"nobody@example.com\"}", &out));
  CHECK(out == NULL);
  EXPECT_CONTAINS(s3db_last_error_details(), "\"field\":\"name\"");
  EXPECT_CONTAINS(s3db_last_error_details(), "\"rule\":\"required\"");
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_insert(res, "[1,2]", &out));
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_insert(res, "{\"name\":42}", &out));
  EXPECT_CONTAINS(s3db_last_error_details(), "\"field\":\"name\"");
  /* undeclared fields are refused */
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_insert(res, "{\"name\":\"X\",\"age\":3}", &out));
  EXPECT_CONTAINS(s3db_last_error_details(), "\"field\":\"age\"");
  /* the strings "null" and "undefined" would read back as null in s3db.js: refused */
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_insert(res, "{\"name\":\"null\"}", &out));
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_insert(res, "{\"name\":\"undefined\"}", &out));
  /* a successful call clears the details; errors without details have none */
  EXPECT_OK(s3db_get(res, "u1", &out));
  s3db_string_free(out);
  CHECK(s3db_last_error_details() == NULL);
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_get(res, "missing", &out));
  CHECK(s3db_last_error_details() == NULL);
  EXPECT_OK(s3db_count(res, &n));
  EXPECT_U64(n, 2);

  /* strings are trimmed */
  EXPECT_OK(s3db_insert(res, "{\"id\":\"trim\",\"name\":\"  Trim  \"}", &out));
  EXPECT_STR(out, "{\"id\":\"trim\",\"name\":\"Trim\"}");
  s3db_string_free(out);
  EXPECT_OK(s3db_delete(res, "trim"));

  /* get = 1 GET */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_get(res, "u1", &out));
  EXPECT_CONTAINS(out, "\"id\":\"u1\"");
  EXPECT_CONTAINS(out, "\"name\":\"Ada\"");
  EXPECT_CONTAINS(out, "\"email\":\"ada@example.com\"");
  s3db_string_free(out);
  EXPECT_REQUESTS(db, 1, 0, 0, 0, 0, 0);
  EXPECT_OK(s3db_stats(db, &out));
  EXPECT_STR(out, "{\"get\":1,\"head\":0,\"put\":0,\"copy\":0,\"delete\":0,\"list\":0}");
  s3db_string_free(out);

  /* get missing → NOT_FOUND */
  out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_get(res, "missing", &out));
  CHECK(out == NULL);
  EXPECT_U64(s3db_last_error_code(), S3DB_ERR_NOT_FOUND);
  CHECK(strlen(s3db_last_error()) > 0);
  out = (char *)1;
  EXPECT_OK(s3db_get_or_null(res, "missing", &out));
  CHECK(out == NULL);
  EXPECT_OK(s3db_get_or_null(res, "u1", &out));
  EXPECT_CONTAINS(out, "\"name\":\"Ada\"");
  s3db_string_free(out);

  /* exists = 1 HEAD */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_exists(res, "u1", &flag));
  CHECK(flag);
  EXPECT_REQUESTS(db, 0, 1, 0, 0, 0, 0);
  EXPECT_OK(s3db_exists(res, "missing", &flag));
  CHECK(!flag);

  /* update = 1 GET + 1 PUT */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_update(res, "u1", "{\"email\":\"ada@analytical.engine\"}", &out));
  EXPECT_CONTAINS(out, "\"email\":\"ada@analytical.engine\"");
  EXPECT_CONTAINS(out, "\"name\":\"Ada\"");
  s3db_string_free(out);
  EXPECT_REQUESTS(db, 1, 0, 1, 0, 0, 0);
  EXPECT_OK(s3db_get(res, "u1", &out));
  EXPECT_CONTAINS(out, "\"email\":\"ada@analytical.engine\"");
  s3db_string_free(out);
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_update(res, "missing", "{\"name\":\"x\"}", &out));
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_update(res, "u1", "{\"id\":\"other\"}", &out));
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_update(res, "u1", "{\"name\":null}", &out));
  /* null removes an optional field */
  EXPECT_OK(s3db_update(res, "u1", "{\"email\":null}", NULL));
  EXPECT_OK(s3db_get(res, "u1", &out));
  CHECK(out != NULL && strstr(out, "email") == NULL);
  s3db_string_free(out);

  /* list_ids / list / count */
  EXPECT_OK(s3db_list_ids(res, &out));
  EXPECT_CONTAINS(out, "\"u1\"");
  CHECK(out != NULL && out[0] == '[');
  s3db_string_free(out);
  EXPECT_OK(s3db_list(res, &out));
  EXPECT_CONTAINS(out, "\"name\":\"Ada\"");
  EXPECT_CONTAINS(out, "\"name\":\"Grace\"");
  s3db_string_free(out);
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_count(res, &n));
  EXPECT_U64(n, 2);
  EXPECT_REQUESTS(db, 0, 0, 0, 0, 0, 1);

  /* delete = 1 HEAD + 1 DELETE; deleting a missing id is NOT_FOUND */
  EXPECT_OK(s3db_insert(res, "{\"id\":\"gone\",\"name\":\"Temp\"}", NULL));
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_delete(res, "gone"));
  EXPECT_REQUESTS(db, 0, 1, 0, 0, 1, 0);
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_get(res, "gone", &out));
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_delete(res, "gone"));
  EXPECT_CONTAINS(s3db_last_error(), "gone");
  EXPECT_OK(s3db_count(res, &n));
  EXPECT_U64(n, 2);

  /* catalog */
  EXPECT_OK(s3db_list_resources(db, &out));
  EXPECT_CONTAINS(out, "\"users\"");
  s3db_string_free(out);
  s3db_resource_t *r = NULL;
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_resource(db, "nope", &r));
  CHECK(r == NULL);
  EXPECT_OK(s3db_resource(db, "users", &r));
  EXPECT_OK(s3db_resource_name(r, &out));
  EXPECT_STR(out, "users");
  s3db_string_free(out);
  s3db_resource_free(r);

  /* a second connection to the same store sees the catalog and the records */
  s3db_database_t *db2 = NULL;
  EXPECT_OK(s3db_connect(url, &db2));
  r = NULL;
  EXPECT_OK(s3db_resource(db2, "users", &r));
  EXPECT_OK(s3db_get(r, "u1", &out));
  EXPECT_CONTAINS(out, "\"name\":\"Ada\"");
  s3db_string_free(out);
  s3db_resource_free(r);
  /* a resource handle outlives its database handle */
  EXPECT_OK(s3db_resource(db2, "users", &r));
  s3db_database_free(db2);
  EXPECT_OK(s3db_count(r, &n));
  EXPECT_U64(n, 2);
  s3db_resource_free(r);
}

static void test_locks(const char *url, s3db_database_t *db) {
  s3db_lock_t *l1 = NULL, *l2 = (s3db_lock_t *)1;
  uint64_t t1 = 0, t2 = 0, t3 = 0;
  char *out = NULL, *holder = NULL;

  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_lock(db, "job", 10000, 0, &l1));
  {
    s3db_stats_t s = {0};
    EXPECT_OK(s3db_request_stats(db, &s));
    CHECK(s.get + s.head + s.put + s.copy + s.delete_ + s.list <= 2);
  }
  EXPECT_OK(s3db_lock_fencing_token(l1, &t1));
  CHECK(t1 >= 1);
  EXPECT_OK(s3db_lock_name(l1, &out));
  EXPECT_STR(out, "job");
  s3db_string_free(out);
  EXPECT_OK(s3db_holder_id(db, &holder));
  EXPECT_OK(s3db_lock_holder_id(l1, &out));
  EXPECT_STR(out, holder);
  s3db_string_free(out);
  s3db_string_free(holder);

  /* held: a second acquisition with timeout 0 fails at once */
  EXPECT_STATUS(S3DB_ERR_LOCK_NOT_ACQUIRED, s3db_lock(db, "job", 10000, 0, &l2));
  CHECK(l2 == NULL);
  EXPECT_U64(s3db_last_error_code(), S3DB_ERR_LOCK_NOT_ACQUIRED);
  /* … and with a timeout, after waiting for it */
  double t0 = now_seconds();
  EXPECT_STATUS(S3DB_ERR_LOCK_NOT_ACQUIRED, s3db_lock(db, "job", 10000, 300, &l2));
  CHECK(now_seconds() - t0 >= 0.25);
  /* another connection contends too */
  s3db_database_t *db2 = NULL;
  EXPECT_OK(s3db_connect(url, &db2));
  EXPECT_STATUS(S3DB_ERR_LOCK_NOT_ACQUIRED, s3db_lock(db2, "job", 10000, 0, &l2));

  int64_t expires = 0;
  EXPECT_OK(s3db_lock_extend(l1, 20000));
  EXPECT_OK(s3db_lock_expires_at(l1, &expires));
  CHECK(expires > (int64_t)time(NULL) * 1000 + 15000);

  /* release = 1 PUT; twice is a no-op; extend after release is LOCK_LOST */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_lock_release(l1));
  EXPECT_REQUESTS(db, 0, 0, 1, 0, 0, 0);
  EXPECT_OK(s3db_lock_release(l1));
  EXPECT_STATUS(S3DB_ERR_LOCK_LOST, s3db_lock_extend(l1, 1000));
  s3db_lock_free(l1);

  /* fencing tokens increase across holders */
  EXPECT_OK(s3db_lock(db2, "job", 10000, 0, &l2));
  EXPECT_OK(s3db_lock_fencing_token(l2, &t2));
  CHECK(t2 > t1);
  EXPECT_OK(s3db_lock_release(l2));
  s3db_lock_free(l2);

  /* an expired lock is taken over; the old holder has lost it */
  EXPECT_OK(s3db_lock(db, "short", 50, 0, &l1));
  EXPECT_OK(s3db_lock_fencing_token(l1, &t1));
  sleep_ms(120);
  EXPECT_OK(s3db_lock(db2, "short", 10000, 0, &l2));
  EXPECT_OK(s3db_lock_fencing_token(l2, &t3));
  CHECK(t3 > t1);
  EXPECT_STATUS(S3DB_ERR_LOCK_LOST, s3db_lock_release(l1));
  EXPECT_OK(s3db_lock_release(l2));
  s3db_lock_free(l1);
  s3db_lock_free(l2);
  s3db_database_free(db2);

  /* with_lock: runs the body holding the lock, always releases */
  with_lock_state st = {.db = db, .result = 0};
  EXPECT_OK(s3db_with_lock(db, "wl", 10000, 0, with_lock_body, &st));
  EXPECT_U64(st.calls, 1);
  CHECK(st.token >= 1);
  EXPECT_U64(st.inner_status, S3DB_ERR_LOCK_NOT_ACQUIRED);
  uint64_t first = st.token;

  st.result = 42; /* a body failure is returned, the lock still released */
  EXPECT_STATUS(42, s3db_with_lock(db, "wl", 10000, 0, with_lock_body, &st));
  EXPECT_CONTAINS(s3db_last_error(), "returned 42");
  EXPECT_U64(st.calls, 2);
  CHECK(st.token > first);

  st.result = S3DB_ERR_LOCK_NOT_ACQUIRED; /* the body's own s3db error is kept */
  EXPECT_STATUS(S3DB_ERR_LOCK_NOT_ACQUIRED, s3db_with_lock(db, "wl", 10000, 0, with_lock_body, &st));
  EXPECT_CONTAINS(s3db_last_error(), "held by");

  EXPECT_OK(s3db_lock(db, "wl", 10000, 0, &l1)); /* released every time */
  st.result = 0;
  int calls = st.calls;
  EXPECT_STATUS(S3DB_ERR_LOCK_NOT_ACQUIRED, s3db_with_lock(db, "wl", 10000, 0, with_lock_body, &st));
  EXPECT_U64(st.calls, calls); /* not run when the lock is not acquired */
  EXPECT_OK(s3db_lock_release(l1));
  s3db_lock_free(l1);
}

static void test_sequences(s3db_database_t *db) {
  s3db_sequence_t *seq = NULL, *bad = (s3db_sequence_t *)1;
  int64_t v = -1;
  bool exists = true;
  char *out = NULL;

  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_sequence(db, "bad", 1, 0, &bad));
  CHECK(bad == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_sequence(db, "a/b", 1, 1, &bad));

  EXPECT_OK(s3db_sequence(db, "orders", 100, 5, &seq));
  EXPECT_OK(s3db_sequence_name(seq, &out));
  EXPECT_STR(out, "orders");
  s3db_string_free(out);
  EXPECT_OK(s3db_sequence_current(seq, &v, &exists));
  CHECK(!exists);
  EXPECT_U64(v, 0);

  /* next = 1 GET + 1 PUT */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_sequence_next(seq, &v));
  EXPECT_U64(v, 100);
  EXPECT_REQUESTS(db, 1, 0, 1, 0, 0, 0);
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_sequence_next(seq, &v));
  EXPECT_U64(v, 105);
  EXPECT_REQUESTS(db, 1, 0, 1, 0, 0, 0);
  EXPECT_OK(s3db_sequence_current(seq, &v, &exists));
  CHECK(exists);
  EXPECT_U64(v, 110);

  EXPECT_OK(s3db_sequence_reset(seq, 1000));
  EXPECT_OK(s3db_sequence_next(seq, &v));
  EXPECT_U64(v, 1000);
  EXPECT_OK(s3db_sequence_current(seq, &v, &exists));
  EXPECT_U64(v, 1005);
  s3db_sequence_free(seq);

  /* several threads on one handle: no duplicates, no gaps */
  EXPECT_OK(s3db_sequence(db, "threads", 1, 1, &seq));
  seq_worker workers[SEQ_THREADS];
  pthread_t threads[SEQ_THREADS];
  for (int i = 0; i < SEQ_THREADS; i++) {
    workers[i] = (seq_worker){.seq = seq};
    pthread_create(&threads[i], NULL, seq_worker_main, &workers[i]);
  }
  int64_t all[SEQ_THREADS * SEQ_PER_THREAD];
  int worker_failures = 0;
  for (int i = 0; i < SEQ_THREADS; i++) {
    pthread_join(threads[i], NULL);
    worker_failures += workers[i].failures;
    memcpy(all + i * SEQ_PER_THREAD, workers[i].values, sizeof workers[i].values);
  }
  EXPECT_U64(worker_failures, 0);
  qsort(all, SEQ_THREADS * SEQ_PER_THREAD, sizeof all[0], cmp_i64);
  int gaps = 0;
  for (int i = 0; i < SEQ_THREADS * SEQ_PER_THREAD; i++) gaps += all[i] != i + 1;
  EXPECT_U64(gaps, 0);
  s3db_sequence_free(seq);
}

static void test_async(const char *url, s3db_database_t *db, s3db_resource_t *res) {
  waiter_t w;

  /* connect */
  waiter_init(&w);
  EXPECT_OK(s3db_connect_async(url, on_db, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_STR(w.text, "");
  CHECK(w.handle != NULL);
  s3db_database_free(w.handle);
  waiter_destroy(&w);

  waiter_init(&w); /* a bad URL is reported through the callback */
  EXPECT_OK(s3db_connect_async("nope://where", on_db, &w));
  EXPECT_CALLBACK(&w, S3DB_ERR_INVALID_ARGUMENT);
  CHECK(w.handle == NULL);
  CHECK(strlen(w.text) > 0);
  waiter_destroy(&w);

  /* insert; the callback itself calls a blocking function */
  waiter_init(&w);
  w.res = res;
  EXPECT_OK(s3db_insert_async(res, "{\"id\":\"async1\",\"name\":\"Async\"}", on_json_then_count, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_STR(w.text, "{\"id\":\"async1\",\"name\":\"Async\"}");
  EXPECT_U64(w.inner_status, S3DB_OK);
  EXPECT_U64(w.inner_count, 3);
  waiter_destroy(&w);

  waiter_init(&w);
  EXPECT_OK(s3db_insert_async(res, "{\"id\":\"async1\",\"name\":\"Async\"}", on_json, &w));
  EXPECT_CALLBACK(&w, S3DB_ERR_ALREADY_EXISTS);
  EXPECT_CONTAINS(w.text, "already exists");
  waiter_destroy(&w);

  /* a validation error's details are readable from the callback */
  waiter_init(&w);
  EXPECT_OK(s3db_insert_async(res, "{\"email\":\"x@example.com\"}", on_json_details, &w));
  EXPECT_CALLBACK(&w, S3DB_ERR_VALIDATION);
  EXPECT_CONTAINS((const char *)w.handle, "\"field\":\"name\"");
  free(w.handle);
  waiter_destroy(&w);

  /* get, get missing */
  waiter_init(&w);
  EXPECT_OK(s3db_get_async(res, "async1", on_json, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_CONTAINS(w.text, "\"name\":\"Async\"");
  waiter_destroy(&w);

  waiter_init(&w);
  EXPECT_OK(s3db_get_async(res, "missing", on_json, &w));
  EXPECT_CALLBACK(&w, S3DB_ERR_NOT_FOUND);
  CHECK(strlen(w.text) > 0);
  waiter_destroy(&w);

  /* update */
  waiter_init(&w);
  EXPECT_OK(s3db_update_async(res, "async1", "{\"email\":\"a@sync.io\"}", on_json, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_CONTAINS(w.text, "\"email\":\"a@sync.io\"");
  waiter_destroy(&w);

  /* list, list_ids, count */
  waiter_init(&w);
  EXPECT_OK(s3db_list_async(res, on_json, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_CONTAINS(w.text, "\"id\":\"async1\"");
  waiter_destroy(&w);

  waiter_init(&w);
  EXPECT_OK(s3db_list_ids_async(res, on_json, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_CONTAINS(w.text, "\"async1\"");
  waiter_destroy(&w);

  waiter_init(&w);
  EXPECT_OK(s3db_count_async(res, on_json, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_STR(w.text, "3");
  waiter_destroy(&w);

  /* delete */
  waiter_init(&w);
  EXPECT_OK(s3db_delete_async(res, "async1", on_json, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_STR(w.text, "null");
  waiter_destroy(&w);

  /* sequence next */
  s3db_sequence_t *seq = NULL;
  EXPECT_OK(s3db_sequence(db, "async-seq", 7, 1, &seq));
  waiter_init(&w);
  EXPECT_OK(s3db_sequence_next_async(seq, on_json, &w));
  s3db_sequence_free(seq); /* the call copied what it needs */
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_STR(w.text, "7");
  waiter_destroy(&w);

  /* lock, contended lock, release */
  waiter_init(&w);
  EXPECT_OK(s3db_lock_async(db, "async-lock", 10000, 0, on_lock, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  s3db_lock_t *lock = w.handle;
  CHECK(lock != NULL);
  waiter_destroy(&w);

  waiter_init(&w);
  EXPECT_OK(s3db_lock_async(db, "async-lock", 10000, 0, on_lock, &w));
  EXPECT_CALLBACK(&w, S3DB_ERR_LOCK_NOT_ACQUIRED);
  CHECK(w.handle == NULL);
  waiter_destroy(&w);

  waiter_init(&w);
  EXPECT_OK(s3db_lock_release_async(lock, on_json, &w));
  EXPECT_CALLBACK(&w, S3DB_OK);
  EXPECT_STR(w.text, "null");
  waiter_destroy(&w);
  s3db_lock_free(lock);
}

/* ------------------------------------------------------------------------------------------ */
/* The s3db.js data model                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Occurrences of needle in text. */
static int count_of(const char *text, const char *needle) {
  int n = 0;
  size_t len = strlen(needle);
  for (const char *p = text ? strstr(text, needle) : NULL; p != NULL; p = strstr(p + len, needle))
    n++;
  return n;
}

/* The value of the first "key":"…" string in JSON text, unescaped (\" and \\ only) into buf
 * ("" if absent). */
static const char *json_string_field(const char *json, const char *key, char *buf, size_t size) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  const char *p = json ? strstr(json, pattern) : NULL;
  size_t n = 0;
  if (p != NULL) {
    for (p += strlen(pattern); *p != '\0' && *p != '"' && n + 1 < size; p++) {
      if (*p == '\\' && p[1] != '\0') p++;
      buf[n++] = *p;
    }
  }
  buf[n] = '\0';
  return buf;
}

static void test_data_model_arguments(s3db_database_t *db, s3db_resource_t *res) {
  const char *bad = "\xff\xfe";
  char *out = (char *)1;
  s3db_database_t *out_db = (s3db_database_t *)1;
  s3db_resource_t *out_res = (s3db_resource_t *)1;
  uint64_t n = 7;

  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect_with(NULL, "{}", &out_db));
  CHECK(out_db == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect_with("memory://x", "{}", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect_with("memory://x", bad, &out_db));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect_with("memory://x", "{", &out_db));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_connect_with("memory://x", "[]", &out_db));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                s3db_connect_with("memory://x", "{\"passphrase\":5}", &out_db));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                s3db_connect_with("memory://x", "{\"passfrase\":\"p\"}", &out_db));
  EXPECT_CONTAINS(s3db_last_error(), "passfrase");
  CHECK(out_db == NULL);

  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_create_resource_with(NULL, "x", "{}", &out_res));
  CHECK(out_res == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_create_resource_with(db, NULL, "{}", &out_res));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_create_resource_with(db, "x", NULL, &out_res));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_create_resource_with(db, "x", "{", &out_res));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_create_resource_with(db, "x", "{}", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_create_resource_with(db, bad, "{}", &out_res));

  out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_insert_many(NULL, "[]", &out));
  CHECK(out == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_insert_many(res, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_insert_many(res, "{\"name\":\"x\"}", &out));
  EXPECT_CONTAINS(s3db_last_error(), "array");
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get_many(res, "[1]", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get_many(res, "\"u1\"", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get_many(res, "[]", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_replace(res, NULL, "{}", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_replace(res, "u1", bad, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_upsert(res, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_patch(res, "u1", "{", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get_with_etag(res, "u1", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_get_with_etag(res, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_update_if(res, "u1", "{}", NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_update_if(res, "u1", "{}", bad, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_delete_many(res, "[null]", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_delete_many(NULL, "[]", NULL));
  n = 7;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_delete_all(NULL, &n));
  EXPECT_U64(n, 0);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_page(res, 10, NULL, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_page(res, 10, bad, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_page(res, 0, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_page(res, 1001, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_page(res, 10, "not-a-cursor", &out));
  EXPECT_CONTAINS(s3db_last_error(), "cursor");
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_query(res, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_query(res, "[]", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_query(res, "{\"name\":{\"$like\":\"A\"}}", &out));
  EXPECT_CONTAINS(s3db_last_error(), "$like");
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_query(res, "{\"name\":{\"$in\":\"A\"}}", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_query(res, "{}", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_list_partition(res, NULL, "{}", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_list_partition(res, "p", "[]", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_list_partition(res, "p", NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_list_ids_partition(res, "p", "{}", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_count_partition(res, "p", "{}", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_count_partition(res, bad, "{}", &n));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_reindex(NULL, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_reindex(res, bad, &out));
  CHECK(out == NULL);
  CHECK(s3db_last_error_details() == NULL);
}

/* create_resource_with, insert_many, get_many, replace, upsert, patch, delete_many, delete_all */
static void test_batches(s3db_database_t *db) {
  s3db_resource_t *res = (s3db_resource_t *)1, *paranoid = NULL;
  char *out = NULL;
  uint64_t n = 0;

  /* bad options are VALIDATION errors */
  EXPECT_STATUS(S3DB_ERR_VALIDATION,
                s3db_create_resource_with(db, "bad", "{\"attributes\":{},\"behavior\":\"nope\"}", &res));
  CHECK(res == NULL);
  EXPECT_CONTAINS(s3db_last_error(), "nope");
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_create_resource_with(db, "bad", "[]", &res));

  EXPECT_OK(s3db_create_resource_with(
      db, "items",
      "{\"attributes\":{\"name\":\"string|min:2\",\"qty\":\"number|integer:true|optional\","
      "\"meta\":{\"color\":\"string|optional\",\"size\":\"string|optional\"}},"
      "\"paranoid\":false}",
      &res));
  CHECK(res != NULL);
  EXPECT_OK(s3db_create_resource_with(db, "keep", "{\"attributes\":{\"name\":\"string\"}}",
                                      &paranoid));

  /* insert_many: each item on its own; a failure does not stop the others */
  EXPECT_OK(s3db_insert_many(
      res, "[{\"id\":\"a\",\"name\":\"Apple\",\"qty\":1},{\"id\":\"b\",\"name\":\"B\"},"
           "{\"id\":\"c\",\"name\":\"Cherry\",\"meta\":{\"color\":\"red\"}},{\"name\":\"Date\"}]",
      &out));
  EXPECT_CONTAINS(out, "{\"index\":0,\"id\":\"a\",\"record\":{\"id\":\"a\",\"name\":\"Apple\",\"qty\":1}}");
  EXPECT_CONTAINS(out, "{\"index\":1,\"id\":\"b\",\"error\":{\"code\":\"VALIDATION\",");
  EXPECT_CONTAINS(out, "{\"index\":2,\"id\":\"c\",\"record\":");
  EXPECT_CONTAINS(out, "{\"index\":3,\"id\":\"");
  EXPECT_U64(count_of(out, "\"index\":"), 4);
  EXPECT_U64(count_of(out, "\"error\":"), 1);
  s3db_string_free(out);
  EXPECT_OK(s3db_count(res, &n));
  EXPECT_U64(n, 3);
  EXPECT_OK(s3db_insert_many(res, "[{\"id\":\"a\",\"name\":\"Again\"}]", NULL));
  EXPECT_OK(s3db_insert_many(res, "[{\"id\":\"a\",\"name\":\"Again\"}]", &out));
  EXPECT_CONTAINS(out, "\"code\":\"ALREADY_EXISTS\"");
  s3db_string_free(out);
  EXPECT_OK(s3db_insert_many(res, "[]", &out));
  EXPECT_STR(out, "[]");
  s3db_string_free(out);

  /* get_many: found in the order asked, missing ids apart; one GET per id */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_get_many(res, "[\"c\",\"nope\",\"a\"]", &out));
  EXPECT_REQUESTS(db, 3, 0, 0, 0, 0, 0);
  CHECK(out != NULL && strncmp(out, "{\"found\":[{\"id\":\"c\"", 19) == 0);
  EXPECT_CONTAINS(out, "{\"id\":\"a\",\"name\":\"Apple\",\"qty\":1}],\"missing\":[\"nope\"]}");
  s3db_string_free(out);
  EXPECT_OK(s3db_get_many(res, "[]", &out));
  EXPECT_STR(out, "{\"found\":[],\"missing\":[]}");
  s3db_string_free(out);

  /* replace: the whole record (fields not given are gone); the id must exist */
  EXPECT_OK(s3db_replace(res, "c", "{\"name\":\"Cranberry\"}", &out));
  EXPECT_STR(out, "{\"id\":\"c\",\"name\":\"Cranberry\"}");
  s3db_string_free(out);
  EXPECT_OK(s3db_get(res, "c", &out));
  EXPECT_STR(out, "{\"id\":\"c\",\"name\":\"Cranberry\"}");
  s3db_string_free(out);
  out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_replace(res, "nope", "{\"name\":\"Nope\"}", &out));
  CHECK(out == NULL);
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_replace(res, "c", "{\"qty\":2}", &out));
  EXPECT_CONTAINS(s3db_last_error_details(), "\"field\":\"name\"");
  EXPECT_OK(s3db_replace(res, "c", "{\"name\":\"Cherry\",\"qty\":5}", NULL));

  /* upsert: inserts a new id, merges into an existing one */
  EXPECT_OK(s3db_upsert(res, "{\"id\":\"e\",\"name\":\"Elderberry\"}", &out));
  EXPECT_STR(out, "{\"id\":\"e\",\"name\":\"Elderberry\"}");
  s3db_string_free(out);
  EXPECT_OK(s3db_upsert(res, "{\"id\":\"e\",\"qty\":9}", &out));
  EXPECT_STR(out, "{\"id\":\"e\",\"name\":\"Elderberry\",\"qty\":9}");
  s3db_string_free(out);
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_upsert(res, "{\"id\":\"f\",\"qty\":1}", &out));
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_upsert(res, "{\"id\":\"e\",\"qty\":1.5}", &out));
  EXPECT_CONTAINS(s3db_last_error_details(), "\"field\":\"qty\"");

  /* patch: dotted keys change one nested field and keep its siblings; null removes */
  EXPECT_OK(s3db_patch(res, "a", "{\"meta\":{\"color\":\"green\",\"size\":\"L\"}}", NULL));
  EXPECT_OK(s3db_patch(res, "a", "{\"meta.size\":\"XL\",\"qty\":null}", &out));
  EXPECT_STR(out, "{\"id\":\"a\",\"name\":\"Apple\",\"meta\":{\"color\":\"green\",\"size\":\"XL\"}}");
  s3db_string_free(out);
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_patch(res, "nope", "{\"qty\":1}", &out));
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_patch(res, "a", "{\"name\":\"A\"}", &out));
  EXPECT_CONTAINS(s3db_last_error_details(), "\"field\":\"name\"");
  EXPECT_CONTAINS(s3db_last_error_details(), "\"rule\":\"min\"");

  /* delete_many: each id on its own; a missing one is reported, not fatal */
  EXPECT_OK(s3db_delete_many(res, "[\"e\",\"nope\"]", &out));
  EXPECT_STR(out, "[{\"index\":0,\"id\":\"e\"},{\"index\":1,\"id\":\"nope\",\"error\":{\"code\":"
                  "\"NOT_FOUND\",\"message\":\"not found: items record \\\"nope\\\"\"}}]");
  s3db_string_free(out);
  bool flag = true;
  EXPECT_OK(s3db_exists(res, "e", &flag));
  CHECK(!flag);
  EXPECT_OK(s3db_count(res, &n));
  EXPECT_U64(n, 3);

  /* delete_all: refused when paranoid (the default), else every record goes */
  EXPECT_OK(s3db_insert(paranoid, "{\"id\":\"k\",\"name\":\"Kept\"}", NULL));
  n = 7;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_delete_all(paranoid, &n));
  EXPECT_CONTAINS(s3db_last_error(), "paranoid");
  EXPECT_U64(n, 0);
  EXPECT_OK(s3db_count(paranoid, &n));
  EXPECT_U64(n, 1);
  EXPECT_OK(s3db_delete_all(res, &n));
  EXPECT_U64(n, 3);
  EXPECT_OK(s3db_count(res, &n));
  EXPECT_U64(n, 0);
  EXPECT_OK(s3db_delete_all(res, NULL));
  EXPECT_OK(s3db_count(paranoid, &n));
  EXPECT_U64(n, 1);

  s3db_resource_free(paranoid);
  s3db_resource_free(res);
}

/* get_with_etag / update_if: optimistic concurrency */
static void test_etags(s3db_database_t *db, s3db_resource_t *res) {
  char *out = NULL, *stale_out = NULL, etag[256], etag2[256];

  EXPECT_OK(s3db_insert(res, "{\"id\":\"v\",\"name\":\"Versioned\"}", NULL));
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_get_with_etag(res, "v", &out));
  EXPECT_REQUESTS(db, 1, 0, 0, 0, 0, 0);
  CHECK(out != NULL && strncmp(out, "{\"record\":{\"id\":\"v\",\"name\":\"Versioned\"},\"etag\":\"", 48) == 0);
  json_string_field(out, "etag", etag, sizeof etag);
  CHECK(strlen(etag) > 0);
  s3db_string_free(out);

  /* the right etag: applied (1 GET + 1 conditional PUT) */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_update_if(res, "v", "{\"email\":\"v1@example.com\"}", etag, &out));
  EXPECT_REQUESTS(db, 1, 0, 1, 0, 0, 0);
  EXPECT_STR(out, "{\"id\":\"v\",\"name\":\"Versioned\",\"email\":\"v1@example.com\"}");
  s3db_string_free(out);

  /* the old etag again: PRECONDITION_FAILED, nothing written */
  stale_out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_PRECONDITION_FAILED,
                s3db_update_if(res, "v", "{\"email\":\"stale@example.com\"}", etag, &stale_out));
  CHECK(stale_out == NULL);
  EXPECT_U64(s3db_last_error_code(), S3DB_ERR_PRECONDITION_FAILED);
  EXPECT_OK(s3db_get_with_etag(res, "v", &out));
  EXPECT_CONTAINS(out, "\"email\":\"v1@example.com\"");
  json_string_field(out, "etag", etag2, sizeof etag2);
  CHECK(strcmp(etag, etag2) != 0);
  s3db_string_free(out);

  /* a plain update in between makes the etag stale too */
  EXPECT_OK(s3db_update(res, "v", "{\"email\":\"v2@example.com\"}", NULL));
  EXPECT_STATUS(S3DB_ERR_PRECONDITION_FAILED,
                s3db_update_if(res, "v", "{\"email\":\"v3@example.com\"}", etag2, NULL));
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_get_with_etag(res, "nope", &out));
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_update_if(res, "nope", "{}", etag2, NULL));
  EXPECT_OK(s3db_delete(res, "v"));
}

/* page, query, partitions, reindex */
static void test_listing(s3db_database_t *db) {
  s3db_resource_t *res = NULL, *redefined = NULL;
  char *out = NULL, cursor[1024];
  uint64_t n = 0;

  EXPECT_OK(s3db_create_resource_with(
      db, "people",
      "{\"attributes\":{\"name\":\"string\",\"country\":\"string\",\"age\":\"number\","
      "\"address\":{\"city\":\"string|optional\"}},"
      "\"partitions\":{\"byCountry\":{\"fields\":{\"country\":\"string\"}}}}",
      &res));
  if (res == NULL) return;
  EXPECT_OK(s3db_insert_many(
      res,
      "[{\"id\":\"p1\",\"name\":\"Ana\",\"country\":\"PT\",\"age\":31,\"address\":{\"city\":\"Porto\"}},"
      "{\"id\":\"p2\",\"name\":\"Bruno\",\"country\":\"PT\",\"age\":25,\"address\":{\"city\":\"Lisbon\"}},"
      "{\"id\":\"p3\",\"name\":\"Carla\",\"country\":\"BR\",\"age\":40},"
      "{\"id\":\"p4\",\"name\":\"Dan\",\"country\":\"US\",\"age\":19},"
      "{\"id\":\"p5\",\"name\":\"Eva\",\"country\":\"BR\",\"age\":52}]",
      &out));
  EXPECT_U64(count_of(out, "\"error\""), 0);
  s3db_string_free(out);

  /* partitions: count (LIST only), list, list ids */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_count_partition(res, "byCountry", "{\"country\":\"PT\"}", &n));
  EXPECT_U64(n, 2);
  EXPECT_REQUESTS(db, 0, 0, 0, 0, 0, 1);
  EXPECT_OK(s3db_count_partition(res, "byCountry", "{\"country\":\"BR\"}", &n));
  EXPECT_U64(n, 2);
  EXPECT_OK(s3db_count_partition(res, "byCountry", "{\"country\":\"FR\"}", &n));
  EXPECT_U64(n, 0);
  EXPECT_OK(s3db_count_partition(res, "byCountry", "{}", &n));
  EXPECT_U64(n, 5);
  EXPECT_OK(s3db_list_partition(res, "byCountry", "{\"country\":\"BR\"}", &out));
  EXPECT_U64(count_of(out, "\"country\":\"BR\""), 2);
  EXPECT_U64(count_of(out, "\"id\":"), 2);
  EXPECT_CONTAINS(out, "\"name\":\"Carla\"");
  EXPECT_CONTAINS(out, "\"name\":\"Eva\"");
  s3db_string_free(out);
  EXPECT_OK(s3db_list_ids_partition(res, "byCountry", "{\"country\":\"PT\"}", &out));
  EXPECT_STR(out, "[\"p1\",\"p2\"]");
  s3db_string_free(out);
  n = 7;
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_count_partition(res, "byAge", "{}", &n));
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_list_partition(res, "byAge", "{}", &out));
  CHECK(out == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                s3db_count_partition(res, "byCountry", "{\"country\":\"a/b\"}", &n));

  /* an update moves the record's partition reference */
  EXPECT_OK(s3db_update(res, "p4", "{\"country\":\"PT\"}", NULL));
  EXPECT_OK(s3db_count_partition(res, "byCountry", "{\"country\":\"PT\"}", &n));
  EXPECT_U64(n, 3);
  EXPECT_OK(s3db_count_partition(res, "byCountry", "{\"country\":\"US\"}", &n));
  EXPECT_U64(n, 0);
  /* and a delete removes it (a GET instead of a HEAD, to find the references) */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_delete(res, "p4"));
  {
    s3db_stats_t s = {0};
    EXPECT_OK(s3db_request_stats(db, &s));
    EXPECT_U64(s.get, 1);
    EXPECT_U64(s.head, 0);
    CHECK(s.delete_ >= 2);
  }
  EXPECT_OK(s3db_count_partition(res, "byCountry", "{\"country\":\"PT\"}", &n));
  EXPECT_U64(n, 2);

  /* query: operators, dotted paths; equalities use the partition */
  EXPECT_OK(s3db_query(res, "{\"age\":{\"$gte\":31}}", &out));
  EXPECT_U64(count_of(out, "\"id\":"), 3);
  EXPECT_CONTAINS(out, "\"id\":\"p1\"");
  EXPECT_CONTAINS(out, "\"id\":\"p3\"");
  EXPECT_CONTAINS(out, "\"id\":\"p5\"");
  s3db_string_free(out);
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_query(res, "{\"country\":\"PT\",\"age\":{\"$lt\":30}}", &out));
  EXPECT_STR(out, "[{\"id\":\"p2\",\"name\":\"Bruno\",\"country\":\"PT\",\"age\":25,"
                  "\"address\":{\"city\":\"Lisbon\"}}]");
  s3db_string_free(out);
  EXPECT_REQUESTS(db, 2, 0, 0, 0, 0, 1); /* the PT partition only: 1 LIST + 2 GET */
  EXPECT_OK(s3db_query(res, "{\"address.city\":{\"$in\":[\"Porto\",\"Faro\"]}}", &out));
  EXPECT_U64(count_of(out, "\"id\":"), 1);
  EXPECT_CONTAINS(out, "\"id\":\"p1\"");
  s3db_string_free(out);
  EXPECT_OK(s3db_query(res, "{\"address\":{\"$exists\":false},\"name\":{\"$ne\":\"Eva\"}}", &out));
  EXPECT_STR(out, "[{\"id\":\"p3\",\"name\":\"Carla\",\"country\":\"BR\",\"age\":40}]");
  s3db_string_free(out);
  EXPECT_OK(s3db_query(res, "{\"country\":{\"$nin\":[\"PT\",\"BR\"]}}", &out));
  EXPECT_STR(out, "[]");
  s3db_string_free(out);
  EXPECT_OK(s3db_query(res, "{}", &out));
  EXPECT_U64(count_of(out, "\"id\":"), 4);
  s3db_string_free(out);

  /* page: one LIST plus a GET per record; the cursor leads on, null at the end */
  EXPECT_OK(s3db_insert(res, "{\"id\":\"p6\",\"name\":\"Fay\",\"country\":\"US\",\"age\":33}", NULL));
  int pages = 0, records = 0;
  const char *next = NULL;
  for (;;) {
    EXPECT_OK(s3db_reset_stats(db));
    EXPECT_OK(s3db_page(res, 2, next, &out));
    if (out == NULL) break;
    pages++;
    unsigned here = (unsigned)count_of(out, "{\"id\":");
    records += (int)here;
    EXPECT_REQUESTS(db, here, 0, 0, 0, 0, 1);
    CHECK(strncmp(out, "{\"items\":[", 10) == 0);
    if (strstr(out, "\"cursor\":null}") != NULL) {
      s3db_string_free(out);
      break;
    }
    json_string_field(out, "cursor", cursor, sizeof cursor);
    CHECK(strlen(cursor) > 0);
    next = cursor;
    s3db_string_free(out);
    if (pages > 10) break;
  }
  EXPECT_U64(records, 5);
  CHECK(pages == 3 || pages == 4); /* an S3 store may end with an empty last page */
  EXPECT_OK(s3db_page(res, 1000, NULL, &out));
  EXPECT_U64(count_of(out, "{\"id\":"), 5);
  EXPECT_CONTAINS(out, "\"cursor\":null}");
  s3db_string_free(out);
  /* a cursor of another listing is refused */
  {
    s3db_resource_t *other = NULL;
    EXPECT_OK(s3db_create_resource(db, "others", "{\"name\":\"string\"}", &other));
    EXPECT_OK(s3db_page(res, 1, NULL, &out));
    json_string_field(out, "cursor", cursor, sizeof cursor);
    s3db_string_free(out);
    EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_page(other, 1, cursor, &out));
    CHECK(out == NULL);
    s3db_resource_free(other);
  }

  /* reindex: nothing to do on consistent references */
  EXPECT_OK(s3db_reindex(res, NULL, &out));
  EXPECT_STR(out, "{\"written\":0,\"deleted\":0}");
  s3db_string_free(out);
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_reindex(res, "byAge", &out));
  /* a partition added later has no references until reindexed */
  EXPECT_OK(s3db_create_resource_with(
      db, "people",
      "{\"attributes\":{\"name\":\"string\",\"country\":\"string\",\"age\":\"number\","
      "\"address\":{\"city\":\"string|optional\"}},"
      "\"partitions\":{\"byCountry\":{\"fields\":{\"country\":\"string\"}},"
      "\"byAge\":{\"fields\":{\"age\":\"number\"}}}}",
      &redefined));
  EXPECT_OK(s3db_count_partition(redefined, "byAge", "{\"age\":40}", &n));
  EXPECT_U64(n, 0);
  EXPECT_OK(s3db_reindex(redefined, "byAge", &out));
  EXPECT_STR(out, "{\"written\":5,\"deleted\":0}");
  s3db_string_free(out);
  EXPECT_OK(s3db_count_partition(redefined, "byAge", "{\"age\":40}", &n));
  EXPECT_U64(n, 1);
  EXPECT_OK(s3db_reindex(redefined, NULL, NULL));
  EXPECT_OK(s3db_reindex(redefined, "byAge", &out));
  EXPECT_STR(out, "{\"written\":0,\"deleted\":0}");
  s3db_string_free(out);
  EXPECT_OK(s3db_query(redefined, "{\"age\":52}", &out));
  EXPECT_STR(out, "[{\"id\":\"p5\",\"name\":\"Eva\",\"country\":\"BR\",\"age\":52}]");
  s3db_string_free(out);

  s3db_resource_free(redefined);
  s3db_resource_free(res);
}

/* Native JSON types in and out: numbers, booleans, arrays, nested objects, |trim:false. */
static void test_types(const char *url, s3db_database_t *db) {
  s3db_resource_t *res = NULL;
  char *out = NULL;
  static const char *record =
      "{\"id\":\"t1\",\"n\":1234.5678,\"i\":-7,\"b\":true,\"f\":false,\"tags\":[\"a|b\",\"c\"],"
      "\"nums\":[1.5,-2,0],\"js\":{\"z\":[true,null,{\"q\":\"é\"}]},\"raw\":\"  spaced  \","
      "\"s\":\"日本語 😀\",\"nested\":{\"a\":\"x\",\"deep\":{\"x\":-0.5}}}";

  EXPECT_OK(s3db_create_resource(
      db, "typed",
      "{\"n\":\"number\",\"i\":\"number|integer:true\",\"b\":\"boolean\",\"f\":\"boolean\","
      "\"tags\":\"array|items:string\",\"nums\":\"array|items:number\",\"js\":\"json\","
      "\"raw\":\"string|trim:false\",\"s\":\"string\",\"opt\":\"number|optional\","
      "\"nested\":{\"a\":\"string\",\"deep\":{\"x\":\"number\"}}}",
      &res));
  if (res == NULL) return;
  EXPECT_OK(s3db_insert(res, record, &out));
  EXPECT_STR(out, record);
  s3db_string_free(out);
  EXPECT_OK(s3db_get(res, "t1", &out));
  EXPECT_STR(out, record);
  s3db_string_free(out);

  /* another connection reads the same types */
  s3db_database_t *db2 = NULL;
  s3db_resource_t *r2 = NULL;
  EXPECT_OK(s3db_connect(url, &db2));
  EXPECT_OK(s3db_resource(db2, "typed", &r2));
  EXPECT_OK(s3db_get(r2, "t1", &out));
  EXPECT_STR(out, record);
  s3db_string_free(out);
  s3db_resource_free(r2);
  s3db_database_free(db2);

  /* wrong types are refused, every failing field listed */
  EXPECT_STATUS(S3DB_ERR_VALIDATION,
                s3db_update(res, "t1", "{\"i\":1.5,\"b\":\"maybe\",\"tags\":[1]}", &out));
  EXPECT_CONTAINS(s3db_last_error_details(), "\"field\":\"i\"");
  EXPECT_CONTAINS(s3db_last_error_details(), "\"field\":\"b\"");
  EXPECT_CONTAINS(s3db_last_error_details(), "\"field\":\"tags");
  CHECK(s3db_last_error_details()[0] == '[');
  EXPECT_OK(s3db_update(res, "t1", "{\"opt\":0,\"nested.deep.x\":3}", &out));
  EXPECT_CONTAINS(out, "\"nested\":{\"a\":\"x\",\"deep\":{\"x\":3}}");
  EXPECT_CONTAINS(out, "\"opt\":0");
  s3db_string_free(out);
  s3db_resource_free(res);
}

/* Secret fields: encrypted at rest, readable with the passphrase they were written with. */
static void test_secrets(const char *url) {
  s3db_database_t *db = NULL, *plain = NULL, *same = NULL;
  s3db_resource_t *res = NULL, *r = NULL;
  char *out = NULL;

  EXPECT_OK(s3db_connect_with(url, "{\"passphrase\":\"c-test passphrase\"}", &db));
  if (db == NULL) return;
  EXPECT_OK(s3db_create_resource(db, "vault", "{\"owner\":\"string\",\"pin\":\"secret\"}", &res));
  EXPECT_OK(s3db_insert(res, "{\"id\":\"s1\",\"owner\":\"Ada\",\"pin\":\"1234 ✓\"}", &out));
  EXPECT_STR(out, "{\"id\":\"s1\",\"owner\":\"Ada\",\"pin\":\"1234 ✓\"}");
  s3db_string_free(out);
  EXPECT_OK(s3db_get(res, "s1", &out));
  EXPECT_STR(out, "{\"id\":\"s1\",\"owner\":\"Ada\",\"pin\":\"1234 ✓\"}");
  s3db_string_free(out);

  /* the same passphrase on another connection reads it */
  EXPECT_OK(s3db_connect_with(url, "{\"passphrase\":\"c-test passphrase\"}", &same));
  EXPECT_OK(s3db_resource(same, "vault", &r));
  EXPECT_OK(s3db_get(r, "s1", &out));
  EXPECT_CONTAINS(out, "\"pin\":\"1234 ✓\"");
  s3db_string_free(out);
  s3db_resource_free(r);

  /* the default passphrase does not (NULL options = s3db_connect) */
  EXPECT_OK(s3db_connect_with(url, NULL, &plain));
  EXPECT_OK(s3db_resource(plain, "vault", &r));
  EXPECT_OK(s3db_get(r, "s1", &out));
  EXPECT_CONTAINS(out, "\"owner\":\"Ada\"");
  CHECK(out != NULL && strstr(out, "1234") == NULL);
  s3db_string_free(out);
  s3db_resource_free(r);

  /* a resource's own passphrase (create_resource_with) wins over the connection's */
  s3db_resource_t *own = NULL;
  EXPECT_OK(s3db_create_resource_with(
      plain, "vault2",
      "{\"attributes\":{\"pin\":\"secret\"},\"passphrase\":\"per-resource\"}", &own));
  EXPECT_OK(s3db_insert(own, "{\"id\":\"s2\",\"pin\":\"4321\"}", NULL));
  EXPECT_OK(s3db_get(own, "s2", &out));
  EXPECT_STR(out, "{\"id\":\"s2\",\"pin\":\"4321\"}");
  s3db_string_free(out);
  EXPECT_OK(s3db_resource(same, "vault2", &r));
  EXPECT_OK(s3db_get(r, "s2", &out));
  CHECK(out != NULL && strstr(out, "4321") == NULL);
  s3db_string_free(out);
  s3db_resource_free(r);
  s3db_resource_free(own);

  /* a null passphrase is the default one */
  s3db_database_t *defaulted = NULL;
  EXPECT_OK(s3db_connect_with(url, "{\"passphrase\":null}", &defaulted));
  CHECK(defaulted != NULL);
  s3db_database_free(defaulted);

  s3db_resource_free(res);
  s3db_database_free(plain);
  s3db_database_free(same);
  s3db_database_free(db);
}

/* ------------------------------------------------------------------------------------------ */
/* Coordination: locks, fencing, batched sequences, state, coordinator, healing, content      */
/* ------------------------------------------------------------------------------------------ */

/* The integer after "key": in JSON text (0 if absent). */
static long long json_int_field(const char *json, const char *key) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  const char *p = json ? strstr(json, pattern) : NULL;
  return p ? strtoll(p + strlen(pattern), NULL, 10) : 0;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_lost(void *user_data, const char *message) {
  waiter_finish(user_data, S3DB_ERR_LOCK_LOST, message, NULL);
}

static void test_lock_coordination(const char *url, s3db_database_t *db) {
  const char *bad = "\xff\xfe";
  s3db_lock_t *l1 = NULL, *l2 = NULL;
  s3db_database_t *db2 = NULL;
  bool flag = true;
  char *out = (char *)1, *holder = NULL, pattern[256];
  uint64_t t1 = 0, t2 = 0;
  waiter_t w;

  /* a free lock: not locked, no info; one GET each */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_is_locked(db, "c-job", &flag));
  CHECK(!flag);
  EXPECT_OK(s3db_lock_info(db, "c-job", &out));
  EXPECT_STR(out, "null");
  s3db_string_free(out);
  EXPECT_REQUESTS(db, 2, 0, 0, 0, 0, 0);

  /* held: locked, info names the holder and the token */
  EXPECT_OK(s3db_lock(db, "c-job", 10000, 0, &l1));
  EXPECT_OK(s3db_lock_fencing_token(l1, &t1));
  EXPECT_OK(s3db_is_locked(db, "c-job", &flag));
  CHECK(flag);
  EXPECT_OK(s3db_holder_id(db, &holder));
  EXPECT_OK(s3db_lock_info(db, "c-job", &out));
  snprintf(pattern, sizeof pattern, "{\"holderId\":\"%s\",\"fencingToken\":%llu,", holder,
           (unsigned long long)t1);
  CHECK(out != NULL && strncmp(out, pattern, strlen(pattern)) == 0);
  long long now = now_ms();
  CHECK(json_int_field(out, "acquiredAt") > now - 60000 && json_int_field(out, "acquiredAt") <= now);
  CHECK(json_int_field(out, "expiresAt") > now + 5000);
  s3db_string_free(out);
  s3db_string_free(holder);
  EXPECT_OK(s3db_lock_is_lost(l1, &flag));
  CHECK(!flag);
  EXPECT_OK(s3db_lock_release(l1));
  EXPECT_OK(s3db_is_locked(db, "c-job", &flag));
  CHECK(!flag);
  EXPECT_OK(s3db_lock_info(db, "c-job", &out));
  EXPECT_STR(out, "null");
  s3db_string_free(out);
  s3db_lock_free(l1);

  /* arguments */
  out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock_info(db, "a/b", &out));
  CHECK(out == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock_info(NULL, "x", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock_info(db, "x", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_is_locked(db, bad, &flag));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_is_locked(db, "x", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock_is_lost(NULL, &flag));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock_auto_renew(NULL, on_lost, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock_stop_renewing(NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_lock_guarded_put(NULL, "d", "1", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_fenced_put(db, "d", "{", 1, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_fenced_put(db, "a/b", "1", 1, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_fenced_get(db, NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_fenced_get(db, "d", NULL));

  EXPECT_OK(s3db_connect(url, &db2));
  if (db2 == NULL) return;

  /* auto-renew keeps a 1500 ms lock held past its ttl */
  EXPECT_OK(s3db_lock(db, "c-renewed", 1500, 0, &l1));
  waiter_init(&w);
  EXPECT_OK(s3db_lock_auto_renew(l1, on_lost, &w));
  sleep_ms(2500);
  l2 = (s3db_lock_t *)1;
  EXPECT_STATUS(S3DB_ERR_LOCK_NOT_ACQUIRED, s3db_lock(db2, "c-renewed", 10000, 0, &l2));
  CHECK(l2 == NULL);
  EXPECT_OK(s3db_is_locked(db2, "c-renewed", &flag));
  CHECK(flag);
  EXPECT_OK(s3db_lock_is_lost(l1, &flag));
  CHECK(!flag);
  int64_t expires = 0;
  EXPECT_OK(s3db_lock_expires_at(l1, &expires));
  CHECK(expires > now_ms());
  /* stop_renewing, then auto-renew again (NULL callback allowed), then release */
  EXPECT_OK(s3db_lock_stop_renewing(l1));
  EXPECT_OK(s3db_lock_stop_renewing(l1));
  EXPECT_OK(s3db_lock_auto_renew(l1, NULL, NULL));
  EXPECT_OK(s3db_lock_auto_renew(l1, on_lost, &w));
  EXPECT_OK(s3db_lock_release(l1));
  EXPECT_OK(s3db_is_locked(db2, "c-renewed", &flag));
  CHECK(!flag);
  sleep_ms(600); /* past a renewal interval: a released lock is not "lost" */
  CHECK(w.done == 0);
  s3db_lock_free(l1);
  waiter_destroy(&w);

  /* auto-renew of a lock another holder took over: on_lost runs once, the handle is lost */
  EXPECT_OK(s3db_lock(db, "c-taken", 300, 0, &l1));
  sleep_ms(400);
  EXPECT_OK(s3db_lock(db2, "c-taken", 10000, 0, &l2));
  waiter_init(&w);
  EXPECT_OK(s3db_lock_auto_renew(l1, on_lost, &w));
  EXPECT_CALLBACK(&w, S3DB_ERR_LOCK_LOST);
  EXPECT_CONTAINS(w.text, "c-taken");
  EXPECT_OK(s3db_lock_is_lost(l1, &flag));
  CHECK(flag);
  /* a handle known to be lost writes nothing, without a request */
  EXPECT_OK(s3db_reset_stats(db));
  out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_LOCK_LOST, s3db_lock_guarded_put(l1, "c-doc", "{\"v\":1}", &out));
  CHECK(out == NULL);
  EXPECT_REQUESTS(db, 0, 0, 0, 0, 0, 0);
  s3db_lock_free(l1);
  waiter_destroy(&w);
  EXPECT_OK(s3db_lock_release(l2));
  s3db_lock_free(l2);

  /* fencing: a holder whose lease ended (and does not know it) cannot write after the next */
  EXPECT_OK(s3db_lock(db, "c-fence", 200, 0, &l1));
  EXPECT_OK(s3db_lock_fencing_token(l1, &t1));
  EXPECT_OK(s3db_lock_guarded_put(l1, "c-fenced", "{\"by\":\"first\"}", &out));
  CHECK(out != NULL && strlen(out) > 0);
  char version[128];
  snprintf(version, sizeof version, "%s", out ? out : "");
  s3db_string_free(out);
  EXPECT_OK(s3db_fenced_get(db, "c-fenced", &out));
  snprintf(pattern, sizeof pattern, "{\"value\":{\"by\":\"first\"},\"fencingToken\":%llu,",
           (unsigned long long)t1);
  CHECK(out != NULL && strncmp(out, pattern, strlen(pattern)) == 0);
  char got[128];
  EXPECT_STR(json_string_field(out, "version", got, sizeof got), version);
  s3db_string_free(out);
  sleep_ms(300);
  EXPECT_OK(s3db_lock(db2, "c-fence", 10000, 0, &l2));
  EXPECT_OK(s3db_lock_fencing_token(l2, &t2));
  CHECK(t2 > t1);
  EXPECT_OK(s3db_lock_guarded_put(l2, "c-fenced", "{\"by\":\"second\"}", NULL));
  EXPECT_OK(s3db_lock_is_lost(l1, &flag));
  CHECK(!flag); /* it does not know… */
  out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_LOCK_LOST, s3db_lock_guarded_put(l1, "c-fenced", "{\"by\":\"late\"}", &out));
  CHECK(out == NULL); /* …but the token says it */
  EXPECT_CONTAINS(s3db_last_error(), "token");
  EXPECT_OK(s3db_fenced_get(db, "c-fenced", &out));
  EXPECT_CONTAINS(out, "\"value\":{\"by\":\"second\"}");
  EXPECT_U64(json_int_field(out, "fencingToken"), t2);
  s3db_string_free(out);
  /* database-level fenced writes: a lower token is refused, an equal one accepted */
  EXPECT_STATUS(S3DB_ERR_LOCK_LOST, s3db_fenced_put(db, "c-fenced", "1", t1, NULL));
  EXPECT_OK(s3db_fenced_put(db, "c-fenced", "[1,2]", t2, &out));
  CHECK(out != NULL);
  s3db_string_free(out);
  EXPECT_OK(s3db_fenced_get(db2, "c-fenced", &out));
  EXPECT_CONTAINS(out, "\"value\":[1,2]");
  s3db_string_free(out);
  EXPECT_OK(s3db_fenced_get(db, "c-unwritten", &out));
  EXPECT_STR(out, "null");
  s3db_string_free(out);
  EXPECT_STATUS(S3DB_ERR_LOCK_LOST, s3db_lock_release(l1));
  EXPECT_OK(s3db_lock_release(l2));
  /* a released handle writes nothing either */
  EXPECT_STATUS(S3DB_ERR_LOCK_LOST, s3db_lock_guarded_put(l2, "c-fenced", "3", NULL));
  s3db_lock_free(l1);
  s3db_lock_free(l2);
  s3db_database_free(db2);
}

static void test_sequence_batch(s3db_database_t *db) {
  s3db_sequence_t *seq = NULL, *seq2 = NULL, *bad = (s3db_sequence_t *)1;
  int64_t v = -1;
  bool exists = false;
  char *out = (char *)1;

  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_sequence_with(db, "b", 1, 0, 10, &bad));
  CHECK(bad == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_sequence_with(NULL, "b", 1, 1, 10, &bad));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_sequence_with(db, "a/b", 1, 1, 10, &bad));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_sequence_with(db, "b", 1, 1, 10, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_sequence_delete(NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_list_sequences(NULL, &out));
  CHECK(out == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_list_sequences(db, NULL));

  /* batch 10: values 1..10 for one GET + one PUT */
  EXPECT_OK(s3db_sequence_with(db, "c-batched", 1, 1, 10, &seq));
  if (seq == NULL) return;
  EXPECT_OK(s3db_reset_stats(db));
  int in_order = 0;
  for (int i = 1; i <= 10; i++) {
    EXPECT_OK(s3db_sequence_next(seq, &v));
    in_order += v == i;
  }
  EXPECT_U64(in_order, 10);
  EXPECT_REQUESTS(db, 1, 0, 1, 0, 0, 0);
  EXPECT_OK(s3db_sequence_current(seq, &v, &exists));
  CHECK(exists);
  EXPECT_U64(v, 11);
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_sequence_next(seq, &v));
  EXPECT_U64(v, 11);
  EXPECT_REQUESTS(db, 1, 0, 1, 0, 0, 0);
  /* another handle reserves the next batch: no duplicates */
  EXPECT_OK(s3db_sequence_with(db, "c-batched", 1, 1, 10, &seq2));
  EXPECT_OK(s3db_sequence_next(seq2, &v));
  EXPECT_U64(v, 21);
  s3db_sequence_free(seq2);
  /* batch 0 is the standard mode */
  EXPECT_OK(s3db_sequence_with(db, "c-plain", 5, -1, 0, &seq2));
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_sequence_next(seq2, &v));
  EXPECT_U64(v, 5);
  EXPECT_OK(s3db_sequence_next(seq2, &v));
  EXPECT_U64(v, 4);
  EXPECT_REQUESTS(db, 2, 0, 2, 0, 0, 0);
  s3db_sequence_free(seq2);

  EXPECT_OK(s3db_list_sequences(db, &out));
  EXPECT_CONTAINS(out, "\"c-batched\"");
  EXPECT_CONTAINS(out, "\"c-plain\"");
  CHECK(out != NULL && out[0] == '[');
  s3db_string_free(out);

  /* delete: one DELETE; gone from the list; the next value starts again */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_sequence_delete(seq));
  EXPECT_REQUESTS(db, 0, 0, 0, 0, 1, 0);
  EXPECT_OK(s3db_list_sequences(db, &out));
  CHECK(out != NULL && strstr(out, "\"c-batched\"") == NULL);
  EXPECT_CONTAINS(out, "\"c-plain\"");
  s3db_string_free(out);
  EXPECT_OK(s3db_sequence_next(seq, &v));
  EXPECT_U64(v, 1);
  s3db_sequence_free(seq);
}

#define STATE_THREADS 4
#define STATE_PER_THREAD 5

typedef struct {
  const s3db_state_t *st;
  int failures;
} state_worker;

static void *state_worker_main(void *arg) {
  state_worker *w = arg;
  for (int i = 0; i < STATE_PER_THREAD; i++) {
    int64_t v = 0;
    if (s3db_state_increment(w->st, "hits", 1, &v) != S3DB_OK || v < 1) w->failures++;
  }
  return NULL;
}

typedef struct {
  const s3db_state_t *st;
  int calls;
  int return_null, return_bad;
  char seen[256];
  int inner_status;
  int64_t inner;
} update_ctx;

/* Appends the number of the call to the JSON array stored ([] when absent). */
static char *update_append(void *user_data, const char *current) {
  update_ctx *c = user_data;
  c->calls++;
  snprintf(c->seen, sizeof c->seen, "%s", current ? current : "(null)");
  c->inner_status = s3db_state_counter(c->st, "hits", &c->inner); /* s3db calls are allowed */
  if (c->return_null) return NULL;
  if (c->return_bad) return strdup("{not json");
  char *out = malloc(strlen(c->seen) + 32);
  if (current == NULL || strcmp(current, "[]") == 0) {
    sprintf(out, "[%d]", c->calls);
  } else {
    size_t len = strlen(current);
    memcpy(out, current, len - 1);
    sprintf(out + len - 1, ",%d]", c->calls);
  }
  return out;
}

static void test_state(s3db_database_t *db) {
  const char *bad = "\xff\xfe";
  s3db_state_t *st = NULL, *nope = (s3db_state_t *)1;
  char *out = (char *)1, *v1 = NULL, *v2 = NULL, got[128];
  int64_t n = -1;

  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state(db, "a/b", &nope));
  CHECK(nope == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state(NULL, "ns", &nope));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state(db, bad, &nope));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state(db, "ns", NULL));
  EXPECT_OK(s3db_state(db, "c-state", &st));
  if (st == NULL) return;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_get(st, "a/b", &out));
  CHECK(out == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_get(NULL, "k", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_get(st, "k", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_set(st, "k", "{", 0, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_set(st, "k", NULL, 0, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_compare_and_swap(st, "k", NULL, "1", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_compare_and_swap(st, "k", bad, "1", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_compare_and_swap(st, "k", NULL, "x", &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_increment(st, "k", 1, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_counter(st, NULL, &n));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_delete(NULL, "k"));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_reset(st, "a/b"));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_keys(st, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_update(st, "k", NULL, NULL, &out));
  EXPECT_CONTAINS(s3db_last_error(), "func is NULL");

  /* get of an absent key: null, one GET; set: one PUT */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_state_get(st, "cfg", &out));
  EXPECT_STR(out, "null");
  s3db_string_free(out);
  EXPECT_REQUESTS(db, 1, 0, 0, 0, 0, 0);
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_state_set(st, "cfg", "{\"mode\":\"a\",\"n\":[1,true,null]}", 0, &v1));
  CHECK(v1 != NULL && strlen(v1) > 0);
  EXPECT_REQUESTS(db, 0, 0, 1, 0, 0, 0);
  EXPECT_OK(s3db_state_get(st, "cfg", &out));
  EXPECT_CONTAINS(out, "{\"value\":{\"mode\":\"a\",\"n\":[1,true,null]},\"version\":");
  EXPECT_CONTAINS(out, "\"expiresAt\":null}");
  EXPECT_STR(json_string_field(out, "version", got, sizeof got), v1 ? v1 : "?");
  s3db_string_free(out);

  /* compare-and-swap: a stale version does not swap and shows what is there */
  EXPECT_OK(s3db_state_set(st, "cfg", "{\"mode\":\"b\"}", 0, &v2));
  CHECK(v1 != NULL && v2 != NULL && strcmp(v1, v2) != 0);
  EXPECT_OK(s3db_state_compare_and_swap(st, "cfg", v1, "{\"mode\":\"stale\"}", &out));
  EXPECT_CONTAINS(out, "{\"swapped\":false,\"currentValue\":{\"mode\":\"b\"},\"currentVersion\":");
  EXPECT_STR(json_string_field(out, "currentVersion", got, sizeof got), v2 ? v2 : "?");
  s3db_string_free(out);
  EXPECT_OK(s3db_state_compare_and_swap(st, "cfg", v2, "{\"mode\":\"c\"}", &out));
  EXPECT_CONTAINS(out, "{\"swapped\":true,\"currentValue\":{\"mode\":\"c\"},\"currentVersion\":");
  CHECK(strcmp(json_string_field(out, "currentVersion", got, sizeof got), v2 ? v2 : "") != 0);
  s3db_string_free(out);
  /* NULL expected version: only when absent */
  EXPECT_OK(s3db_state_compare_and_swap(st, "cfg", NULL, "0", &out));
  EXPECT_CONTAINS(out, "\"swapped\":false");
  s3db_string_free(out);
  EXPECT_OK(s3db_state_compare_and_swap(st, "fresh", NULL, "\"first\"", &out));
  EXPECT_CONTAINS(out, "{\"swapped\":true,\"currentValue\":\"first\",");
  s3db_string_free(out);
  EXPECT_OK(s3db_state_compare_and_swap(st, "absent", v1, "1", &out));
  EXPECT_STR(out, "{\"swapped\":false,\"currentValue\":null,\"currentVersion\":null}");
  s3db_string_free(out);
  s3db_string_free(v1);
  s3db_string_free(v2);

  /* delete (also of an absent key) and keys */
  EXPECT_OK(s3db_state_keys(st, &out));
  EXPECT_STR(out, "[\"cfg\",\"fresh\"]");
  s3db_string_free(out);
  EXPECT_OK(s3db_state_delete(st, "cfg"));
  EXPECT_OK(s3db_state_delete(st, "cfg"));
  EXPECT_OK(s3db_state_get(st, "cfg", &out));
  EXPECT_STR(out, "null");
  s3db_string_free(out);

  /* counters: 20 increments from 4 threads make 20 */
  pthread_t threads[STATE_THREADS];
  state_worker workers[STATE_THREADS];
  for (int i = 0; i < STATE_THREADS; i++) {
    workers[i] = (state_worker){.st = st};
    pthread_create(&threads[i], NULL, state_worker_main, &workers[i]);
  }
  int worker_failures = 0;
  for (int i = 0; i < STATE_THREADS; i++) {
    pthread_join(threads[i], NULL);
    worker_failures += workers[i].failures;
  }
  EXPECT_U64(worker_failures, 0);
  EXPECT_OK(s3db_state_counter(st, "hits", &n));
  EXPECT_U64(n, STATE_THREADS * STATE_PER_THREAD);
  EXPECT_OK(s3db_state_decrement(st, "hits", 5, &n));
  EXPECT_U64(n, 15);
  EXPECT_OK(s3db_state_increment(st, "hits", -20, &n));
  CHECK(n == -5);
  EXPECT_OK(s3db_state_reset(st, "hits"));
  EXPECT_OK(s3db_state_counter(st, "hits", &n));
  EXPECT_U64(n, 0);
  EXPECT_OK(s3db_state_counter(st, "never", &n));
  EXPECT_U64(n, 0);
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_state_increment(st, "fresh", 1, &n));
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_state_counter(st, "fresh", &n));

  /* ttl: readable until it expires, then absent */
  EXPECT_OK(s3db_state_set(st, "session", "{\"user\":\"ada\"}", 400, NULL));
  EXPECT_OK(s3db_state_get(st, "session", &out));
  EXPECT_CONTAINS(out, "\"value\":{\"user\":\"ada\"}");
  long long expires = json_int_field(out, "expiresAt");
  CHECK(expires > now_ms() && expires <= now_ms() + 400);
  s3db_string_free(out);
  sleep_ms(600);
  EXPECT_OK(s3db_state_get(st, "session", &out));
  EXPECT_STR(out, "null");
  s3db_string_free(out);
  EXPECT_OK(s3db_state_compare_and_swap(st, "session", NULL, "2", &out)); /* expired = absent */
  EXPECT_CONTAINS(out, "\"swapped\":true");
  s3db_string_free(out);

  /* update: the callback gets the current value (NULL when absent) and returns the new one */
  update_ctx c = {.st = st};
  EXPECT_OK(s3db_state_update(st, "list", update_append, &c, &out));
  EXPECT_U64(c.calls, 1);
  EXPECT_STR(c.seen, "(null)");
  EXPECT_U64(c.inner_status, S3DB_OK);
  EXPECT_CONTAINS(out, "{\"value\":[1],\"version\":");
  s3db_string_free(out);
  EXPECT_OK(s3db_state_update(st, "list", update_append, &c, NULL));
  EXPECT_STR(c.seen, "[1]");
  EXPECT_OK(s3db_state_get(st, "list", &out));
  EXPECT_CONTAINS(out, "\"value\":[1,2]");
  s3db_string_free(out);
  /* NULL or invalid JSON from the callback aborts; nothing written */
  c.return_null = 1;
  out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_update(st, "list", update_append, &c, &out));
  CHECK(out == NULL);
  EXPECT_CONTAINS(s3db_last_error(), "NULL");
  c.return_null = 0;
  c.return_bad = 1;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_state_update(st, "list", update_append, &c, &out));
  EXPECT_CONTAINS(s3db_last_error(), "JSON");
  c.return_bad = 0;
  EXPECT_OK(s3db_state_get(st, "list", &out));
  EXPECT_CONTAINS(out, "\"value\":[1,2]");
  s3db_string_free(out);
  /* an update keeps the expiry */
  EXPECT_OK(s3db_state_set(st, "expiring", "[]", 60000, NULL));
  EXPECT_OK(s3db_state_update(st, "expiring", update_append, &c, &out));
  CHECK(json_int_field(out, "expiresAt") > now_ms() + 50000);
  s3db_string_free(out);

  /* another handle on the same namespace sees it all */
  s3db_state_t *same = NULL;
  EXPECT_OK(s3db_state(db, "c-state", &same));
  EXPECT_OK(s3db_state_get(same, "fresh", &out));
  EXPECT_CONTAINS(out, "\"value\":\"first\"");
  s3db_string_free(out);
  s3db_state_free(same);
  s3db_state_free(st);
  s3db_state_free(NULL);
}

typedef struct {
  pthread_mutex_t mu;
  int total, became, lost, changed;
  long long last_became_epoch;
  char last[512];
} events_t;

static void on_event(void *user_data, const char *json) {
  events_t *e = user_data;
  pthread_mutex_lock(&e->mu);
  e->total++;
  if (strstr(json, "\"type\":\"becameLeader\"")) {
    e->became++;
    e->last_became_epoch = json_int_field(json, "epoch");
  }
  if (strstr(json, "\"type\":\"lostLeadership\"")) e->lost++;
  if (strstr(json, "\"type\":\"leaderChanged\"")) e->changed++;
  snprintf(e->last, sizeof e->last, "%s", json);
  pthread_mutex_unlock(&e->mu);
}

static int events_get(events_t *e, int *field) {
  pthread_mutex_lock(&e->mu);
  int v = *field;
  pthread_mutex_unlock(&e->mu);
  return v;
}

/* Polls until cond holds or ms pass; 1 when it holds. */
#define WAIT_UNTIL(cond, ms)                                                     \
  ({                                                                             \
    double until_ = now_seconds() + (ms) / 1000.0;                               \
    while (!(cond) && now_seconds() < until_) sleep_ms(20);                      \
    (cond) ? 1 : 0;                                                              \
  })

static bool leads(const s3db_coordinator_t *c) {
  bool flag = false;
  return c != NULL && s3db_coordinator_is_leader(c, &flag) == S3DB_OK && flag;
}

static void test_coordinator(const char *url, s3db_database_t *db) {
  /* 200 ms heartbeats; a lease longer than the scaled default (600 ms) so that a loaded
   * machine's scheduling stalls do not make the leader step down (stop releases it anyway) */
  const char *opts = "{\"heartbeatIntervalMs\":200,\"leaseTimeoutMs\":2000,\"workerTimeoutMs\":3000}";
  s3db_coordinator_t *a = NULL, *b = NULL, *nope = (s3db_coordinator_t *)1;
  s3db_database_t *db2 = NULL;
  char *out = (char *)1, *id_a = NULL, *id_b = NULL;
  bool flag = true;
  uint64_t token = 7;

  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator(NULL, "ns", NULL, &nope));
  CHECK(nope == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator(db, "a/b", NULL, &nope));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator(db, "ns", "{", &nope));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator(db, "ns", "[]", &nope));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator(db, "ns", "{\"heartbeat\":1}", &nope));
  EXPECT_CONTAINS(s3db_last_error(), "heartbeat");
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                s3db_coordinator(db, "ns", "{\"heartbeatIntervalMs\":-5}", &nope));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                s3db_coordinator(db, "ns", "{\"heartbeatIntervalMs\":200,\"leaseTimeoutMs\":100}",
                                 &nope));
  EXPECT_CONTAINS(s3db_last_error(), "lease_timeout");
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                s3db_coordinator(db, "ns", "{\"strategy\":\"random\"}", &nope));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator(db, "ns", NULL, NULL));
  CHECK(nope == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator_start(NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator_stop(NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator_is_leader(NULL, &flag));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator_get_leader(NULL, &out));
  CHECK(out == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator_metrics(NULL, &out));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator_on_event(NULL, on_event, NULL));
  s3db_coordinator_free(NULL);

  EXPECT_OK(s3db_connect(url, &db2));
  EXPECT_OK(s3db_coordinator(db, "c-coord", opts, &a));
  EXPECT_OK(s3db_coordinator(db2, "c-coord", opts, &b));
  if (a == NULL || b == NULL || db2 == NULL) goto out;
  EXPECT_OK(s3db_coordinator_worker_id(a, &id_a));
  EXPECT_OK(s3db_coordinator_worker_id(b, &id_b));
  CHECK(id_a != NULL && id_b != NULL && strcmp(id_a, id_b) != 0);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator_is_leader(a, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_coordinator_get_leader(a, NULL));

  /* not started: no leader, no request */
  EXPECT_OK(s3db_coordinator_is_leader(a, &flag));
  CHECK(!flag);
  EXPECT_OK(s3db_coordinator_get_leader(a, &out));
  EXPECT_STR(out, "null");
  s3db_string_free(out);
  EXPECT_OK(s3db_coordinator_fencing_token(a, &token, &flag));
  CHECK(!flag);
  EXPECT_U64(token, 0);

  events_t ea = {.mu = PTHREAD_MUTEX_INITIALIZER}, eb = {.mu = PTHREAD_MUTEX_INITIALIZER};
  EXPECT_OK(s3db_coordinator_on_event(a, on_event, &ea));
  EXPECT_OK(s3db_coordinator_on_event(b, on_event, &eb));
  EXPECT_OK(s3db_coordinator_start(a));
  EXPECT_OK(s3db_coordinator_start(b));
  EXPECT_OK(s3db_coordinator_start(b)); /* starting again does nothing */

  /* exactly one leader, and it stays so */
  CHECK(WAIT_UNTIL(leads(a) || leads(b), 5000));
  int both = 0, none = 0;
  for (int i = 0; i < 10; i++) {
    bool la = leads(a), lb = leads(b);
    both += la && lb;
    none += !la && !lb;
    sleep_ms(100);
  }
  EXPECT_U64(both, 0);
  EXPECT_U64(none, 0);
  s3db_coordinator_t *leader = leads(a) ? a : b, *follower = leader == a ? b : a;
  events_t *el = leader == a ? &ea : &eb, *ef = leader == a ? &eb : &ea;
  const char *leader_id = leader == a ? id_a : id_b;
  uint64_t epoch1 = 0, epoch2 = 0;
  EXPECT_OK(s3db_coordinator_fencing_token(leader, &epoch1, &flag));
  CHECK(flag && epoch1 >= 1);
  char pattern[256], got[256];
  snprintf(pattern, sizeof pattern, "{\"leaderId\":\"%s\",\"epoch\":%llu,", leader_id,
           (unsigned long long)epoch1);
  EXPECT_OK(s3db_coordinator_get_leader(leader, &out));
  CHECK(out != NULL && strncmp(out, pattern, strlen(pattern)) == 0);
  CHECK(json_int_field(out, "leaseEnd") > now_ms());
  s3db_string_free(out);
  /* the follower learns who leads from state.json */
  CHECK(WAIT_UNTIL(s3db_coordinator_get_leader(follower, &out) == S3DB_OK &&
                       strcmp(json_string_field(out, "leaderId", got, sizeof got), leader_id) == 0 &&
                       (s3db_string_free(out), 1),
                   3000));
  EXPECT_OK(s3db_coordinator_active_workers(leader, &out));
  EXPECT_CONTAINS(out, id_a);
  EXPECT_CONTAINS(out, id_b);
  EXPECT_CONTAINS(out, "\"lastHeartbeat\":");
  s3db_string_free(out);
  EXPECT_OK(s3db_coordinator_metrics(leader, &out));
  EXPECT_CONTAINS(out, "{\"heartbeats\":");
  CHECK(json_int_field(out, "heartbeats") >= 1);
  EXPECT_CONTAINS(out, "\"heartbeatP99Ms\":");
  s3db_string_free(out);

  /* events arrive through the callbacks */
  CHECK(WAIT_UNTIL(events_get(el, &el->became) == 1, 3000));
  EXPECT_U64(el->last_became_epoch, epoch1);
  CHECK(WAIT_UNTIL(events_get(ef, &ef->changed) >= 1, 3000));
  EXPECT_U64(events_get(ef, &ef->became), 0);

  /* stop the leader: its lostLeadership is delivered before stop returns, then no more */
  EXPECT_OK(s3db_coordinator_stop(leader));
  EXPECT_U64(events_get(el, &el->lost), 1);
  EXPECT_OK(s3db_coordinator_is_leader(leader, &flag));
  CHECK(!flag);
  int after_stop = events_get(el, &el->total);
  /* the other one takes over with a higher epoch */
  CHECK(WAIT_UNTIL(leads(follower), 5000));
  EXPECT_OK(s3db_coordinator_fencing_token(follower, &epoch2, &flag));
  CHECK(flag && epoch2 > epoch1);
  CHECK(WAIT_UNTIL(events_get(ef, &ef->became) == 1, 3000));
  EXPECT_U64(ef->last_became_epoch, epoch2);
  CHECK(leads(follower) && !leads(leader));
  EXPECT_OK(s3db_coordinator_stop(leader)); /* stopping twice does nothing */
  EXPECT_U64(events_get(el, &el->total), after_stop);

  /* a NULL callback ends the callbacks */
  EXPECT_OK(s3db_coordinator_on_event(follower, NULL, NULL));
  int follower_events = events_get(ef, &ef->total);
  EXPECT_OK(s3db_coordinator_stop(follower));
  EXPECT_U64(events_get(ef, &ef->total), follower_events);

out:
  s3db_string_free(id_a);
  s3db_string_free(id_b);
  s3db_coordinator_free(a);
  s3db_coordinator_free(b);
  s3db_database_free(db2);
}

/* A coordinator freed from inside its own event callback, and freed while running. */
typedef struct {
  s3db_coordinator_t *coord;
  int calls;
  int stop_status;
} self_stop_t;

static void stop_from_callback(void *user_data, const char *json) {
  self_stop_t *s = user_data;
  (void)json;
  if (s->calls++ == 0) s->stop_status = s3db_coordinator_stop(s->coord);
}

static void test_coordinator_lifecycle(s3db_database_t *db) {
  s3db_coordinator_t *c = NULL;
  self_stop_t s = {0};
  EXPECT_OK(s3db_coordinator(db, "c-coord-life", "{\"heartbeatIntervalMs\":100,\"startupJitterMs\":0}",
                             &c));
  if (c == NULL) return;
  s.coord = c;
  EXPECT_OK(s3db_coordinator_on_event(c, stop_from_callback, &s));
  EXPECT_OK(s3db_coordinator_start(c));
  CHECK(WAIT_UNTIL(s.calls >= 1, 3000));
  sleep_ms(300);
  EXPECT_U64(s.calls, 1); /* stopped from the callback: no further event */
  EXPECT_U64(s.stop_status, S3DB_OK);
  s3db_coordinator_free(c);

  /* freed while running, with callbacks registered: no crash, callbacks end */
  events_t e = {.mu = PTHREAD_MUTEX_INITIALIZER};
  c = NULL;
  EXPECT_OK(s3db_coordinator(db, "c-coord-life2", "{\"heartbeatIntervalMs\":100}", &c));
  EXPECT_OK(s3db_coordinator_on_event(c, on_event, &e));
  EXPECT_OK(s3db_coordinator_start(c));
  CHECK(WAIT_UNTIL(leads(c), 3000));
  s3db_coordinator_free(c);
  int total = events_get(&e, &e.total);
  sleep_ms(300);
  EXPECT_U64(events_get(&e, &e.total), total);
}

static void test_healing(const char *url, s3db_database_t *db) {
  char *out = (char *)1;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_healing_log(NULL, &out));
  CHECK(out == NULL);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_healing_log(db, NULL));
  EXPECT_OK(s3db_healing_log(db, &out));
  EXPECT_STR(out, "[]");
  s3db_string_free(out);
  if (strncmp(url, "file://", 7) != 0) return;

  /* a file:// store whose s3db.json has a trailing comma is healed on connect */
  char dir[4096], heal_url[4200], catalog[4200];
  snprintf(dir, sizeof dir, "%s/healing", url + 7);
  snprintf(heal_url, sizeof heal_url, "file://%s", dir);
  snprintf(catalog, sizeof catalog, "%s/s3db.json", dir);
  s3db_database_t *h = NULL;
  s3db_resource_t *res = NULL;
  EXPECT_OK(s3db_connect(heal_url, &h));
  EXPECT_OK(s3db_create_resource(h, "notes", "{\"text\":\"string\"}", &res));
  EXPECT_OK(s3db_insert(res, "{\"id\":\"n1\",\"text\":\"kept\"}", NULL));
  s3db_resource_free(res);
  s3db_database_free(h);

  FILE *f = fopen(catalog, "rb");
  CHECK(f != NULL);
  if (f == NULL) return;
  static char text[1 << 16];
  size_t len = fread(text, 1, sizeof text - 2, f);
  fclose(f);
  text[len] = '\0';
  char *last = strrchr(text, '}');
  CHECK(last != NULL);
  if (last == NULL) return;
  memmove(last + 1, last, strlen(last) + 1); /* "…}" → "…,}" */
  *last = ',';
  f = fopen(catalog, "wb");
  fwrite(text, 1, strlen(text), f);
  fclose(f);

  h = NULL;
  EXPECT_OK(s3db_connect(heal_url, &h));
  if (h == NULL) return;
  EXPECT_OK(s3db_healing_log(h, &out));
  CHECK(out != NULL && strcmp(out, "[]") != 0);
  EXPECT_CONTAINS(out, "trailing comma");
  s3db_string_free(out);
  EXPECT_OK(s3db_resource(h, "notes", &res));
  EXPECT_OK(s3db_get(res, "n1", &out));
  EXPECT_CONTAINS(out, "\"text\":\"kept\"");
  s3db_string_free(out);
  s3db_resource_free(res);
  s3db_database_free(h);
  /* healed once: the next connection finds it intact */
  h = NULL;
  EXPECT_OK(s3db_connect(heal_url, &h));
  EXPECT_OK(s3db_healing_log(h, &out));
  EXPECT_STR(out, "[]");
  s3db_string_free(out);
  s3db_database_free(h);
}

static void test_content(s3db_database_t *db) {
  s3db_resource_t *res = NULL;
  unsigned char blob[300], small[5] = {0, 255, 0, 1, 128};
  uint8_t *bytes = (uint8_t *)1;
  size_t len = 99;
  char *out = NULL, *type = NULL;
  for (size_t i = 0; i < sizeof blob; i++) blob[i] = (unsigned char)(i * 7 + 3);
  blob[10] = 0;
  blob[11] = 255;

  EXPECT_OK(s3db_create_resource(db, "files", "{\"name\":\"string\"}", &res));
  if (res == NULL) return;

  /* insert with content: one PUT; the fields stay readable */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_insert_with_content(res, "{\"id\":\"f1\",\"name\":\"blob\"}", blob, sizeof blob,
                                     "application/x-test", &out));
  EXPECT_STR(out, "{\"id\":\"f1\",\"name\":\"blob\"}");
  s3db_string_free(out);
  EXPECT_REQUESTS(db, 0, 0, 1, 0, 0, 0);
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_content(res, "f1", &bytes, &len, &type));
  EXPECT_REQUESTS(db, 1, 0, 0, 0, 0, 0);
  EXPECT_U64(len, sizeof blob);
  CHECK(bytes != NULL && len == sizeof blob && memcmp(bytes, blob, len) == 0);
  EXPECT_STR(type, "application/x-test");
  s3db_bytes_free(bytes, len);
  s3db_string_free(type);
  EXPECT_OK(s3db_get(res, "f1", &out));
  EXPECT_STR(out, "{\"id\":\"f1\",\"name\":\"blob\"}");
  s3db_string_free(out);

  /* replace it (NULL type: octet-stream), read it without its type */
  EXPECT_OK(s3db_set_content(res, "f1", small, sizeof small, NULL));
  EXPECT_OK(s3db_content(res, "f1", &bytes, &len, NULL));
  CHECK(len == sizeof small && bytes != NULL && memcmp(bytes, small, len) == 0);
  s3db_bytes_free(bytes, len);
  EXPECT_OK(s3db_content(res, "f1", &bytes, &len, &type));
  EXPECT_STR(type, "application/octet-stream");
  s3db_bytes_free(bytes, len);
  s3db_string_free(type);

  /* remove it: the record stays, its content is NOT_FOUND */
  EXPECT_OK(s3db_set_content(res, "f1", NULL, 0, NULL));
  bytes = (uint8_t *)1;
  len = 9;
  type = (char *)1;
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_content(res, "f1", &bytes, &len, &type));
  CHECK(bytes == NULL && len == 0 && type == NULL);
  EXPECT_OK(s3db_get(res, "f1", &out));
  EXPECT_STR(out, "{\"id\":\"f1\",\"name\":\"blob\"}");
  s3db_string_free(out);

  /* errors */
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_set_content(res, "missing", small, 1, "a/b"));
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_content(res, "missing", &bytes, &len, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                s3db_insert_with_content(res, "{\"name\":\"x\"}", NULL, 5, "a/b", NULL));
  EXPECT_CONTAINS(s3db_last_error(), "bytes is NULL");
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                s3db_insert_with_content(res, "{\"name\":\"x\"}", small, 5, "application/json", NULL));
  EXPECT_STATUS(S3DB_ERR_VALIDATION,
                s3db_insert_with_content(res, "{\"nom\":\"x\"}", small, 5, "a/b", NULL));
  EXPECT_STATUS(S3DB_ERR_ALREADY_EXISTS,
                s3db_insert_with_content(res, "{\"id\":\"f1\",\"name\":\"x\"}", small, 5, "a/b", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_set_content(res, "f1", NULL, 3, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_set_content(NULL, "f1", NULL, 0, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_content(res, "f1", NULL, &len, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_content(res, "f1", &bytes, NULL, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_content(res, NULL, &bytes, &len, NULL));
  /* empty content (NULL with length 0) is no content */
  EXPECT_OK(s3db_insert_with_content(res, "{\"id\":\"f2\",\"name\":\"empty\"}", NULL, 0, NULL, NULL));
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_content(res, "f2", &bytes, &len, &type));
  EXPECT_OK(s3db_set_content(res, "f2", small, 0, "text/plain"));
  EXPECT_STATUS(S3DB_ERR_NOT_FOUND, s3db_content(res, "f2", &bytes, &len, &type));
  CHECK(bytes == NULL && len == 0 && type == NULL);
  EXPECT_OK(s3db_get(res, "f2", &out));
  EXPECT_STR(out, "{\"id\":\"f2\",\"name\":\"empty\"}");
  s3db_string_free(out);
  s3db_bytes_free(NULL, 0);
  s3db_resource_free(res);
}

/* Plugin-owned attributes (s3db.js addPluginAttribute): keys, storage, a fresh connection. */
static void test_plugin_attributes(const char *url, s3db_database_t *db) {
  const char *behaviors[] = {"body-overflow", "body-only"};
  char big[2600];
  memset(big, 'x', 2500);
  big[2500] = '\0';
  for (int b = 0; b < 2; b++) {
    char name[64], opts[256], rec[3000], *out = NULL;
    snprintf(name, sizeof name, "pa_%d", b);
    snprintf(opts, sizeof opts,
             "{\"attributes\":{\"title\":\"string\",\"body\":\"string|optional\"},\"behavior\":\"%s\"}",
             behaviors[b]);
    s3db_resource_t *res = NULL;
    EXPECT_OK(s3db_create_resource_with(db, name, opts, &res));
    if (res == NULL) return;
    EXPECT_OK(s3db_resource_add_plugin_attribute(res, "auditedBy", "\"string|optional\"", "audit", &out));
    EXPECT_STR(out, "{\"auditedBy\":\"pkdv\"}");
    s3db_string_free(out);
    EXPECT_OK(s3db_resource_add_plugin_attribute(res, "score", "{\"type\":\"number\",\"optional\":true}",
                                                 "ranker", NULL));
    EXPECT_OK(s3db_resource_plugin_map(res, &out));
    EXPECT_STR(out, "{\"auditedBy\":\"pkdv\",\"score\":\"p4sy\"}");
    s3db_string_free(out);
    /* the same call again writes nothing */
    EXPECT_OK(s3db_reset_stats(db));
    EXPECT_OK(s3db_resource_add_plugin_attribute(res, "score", "{\"type\":\"number\",\"optional\":true}",
                                                 "ranker", NULL));
    EXPECT_REQUESTS(db, 0, 0, 0, 0, 0, 0);
    snprintf(rec, sizeof rec, "{\"id\":\"big\",\"title\":\"T\",\"body\":\"%s\",\"auditedBy\":\"bob\",\"score\":8}", big);
    EXPECT_OK(s3db_insert(res, rec, NULL));
    EXPECT_OK(s3db_insert(res, "{\"id\":\"small\",\"title\":\"T\",\"auditedBy\":\"alice\",\"score\":7.5}", NULL));

    s3db_database_t *fresh = NULL;
    s3db_resource_t *again = NULL;
    EXPECT_OK(s3db_connect(url, &fresh));
    EXPECT_OK(s3db_resource(fresh, name, &again));
    EXPECT_OK(s3db_get(again, "small", &out));
    EXPECT_STR(out, "{\"id\":\"small\",\"title\":\"T\",\"auditedBy\":\"alice\",\"score\":7.5}");
    s3db_string_free(out);
    EXPECT_OK(s3db_get(again, "big", &out));
    EXPECT_CONTAINS(out, "\"auditedBy\":\"bob\",\"score\":8}");
    s3db_string_free(out);
    s3db_resource_free(again);
    s3db_database_free(fresh);

    EXPECT_STATUS(S3DB_ERR_CONFLICT, s3db_resource_add_plugin_attribute(res, "title", "\"string\"", "p", NULL));
    EXPECT_STATUS(S3DB_ERR_CONFLICT, s3db_resource_add_plugin_attribute(res, "score", "\"number\"", "other", NULL));
    EXPECT_STATUS(S3DB_ERR_VALIDATION,
                  s3db_resource_add_plugin_attribute(res, "bad", "\"strng|optional\"", "p", NULL));
    EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_resource_add_plugin_attribute(res, "x", "42", "p", NULL));
    EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_resource_add_plugin_attribute(res, NULL, "\"string\"", "p", NULL));
    EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                  s3db_resource_add_plugin_attribute(res, "x", "\"string\"", "\xff\xfe", NULL));
    bool removed = false;
    EXPECT_OK(s3db_resource_remove_plugin_attribute(res, "score", "ranker", &removed));
    CHECK(removed);
    EXPECT_OK(s3db_resource_remove_plugin_attribute(res, "score", "ranker", &removed));
    CHECK(!removed);
    s3db_resource_free(res);
  }
}

static int hook_calls;

/* beforeInsert: derives "slug" from "title" (a tiny JSON edit: appends a field). */
static char *slug_hook(void *user_data, const char *value_json) {
  (void)user_data;
  hook_calls++;
  if (strstr(value_json, "\"title\":\"bad\"")) return NULL;
  size_t n = strlen(value_json);
  char *out = malloc(n + 32);
  memcpy(out, value_json, n - 1);
  strcpy(out + n - 1, ",\"slug\":\"derived\"}");
  return out;
}

static char *garbage_hook(void *user_data, const char *value_json) {
  (void)user_data, (void)value_json;
  char *out = malloc(8);
  strcpy(out, "{nope");
  return out;
}

static void test_hooks(s3db_database_t *db) {
  s3db_resource_t *res = NULL;
  char *out = NULL;
  EXPECT_OK(s3db_create_resource(db, "hooked", "{\"title\":\"string\",\"slug\":\"string|optional\"}", &res));
  if (res == NULL) return;
  EXPECT_OK(s3db_resource_add_hook(res, "beforeInsert", "slug_hook", slug_hook, NULL));
  hook_calls = 0;
  EXPECT_OK(s3db_insert(res, "{\"id\":\"h1\",\"title\":\"x\"}", &out));
  EXPECT_CONTAINS(out, "\"slug\":\"derived\"");
  s3db_string_free(out);
  CHECK(hook_calls == 1);
  EXPECT_OK(s3db_get(res, "h1", &out));
  EXPECT_CONTAINS(out, "\"slug\":\"derived\"");
  s3db_string_free(out);
  /* NULL from the hook aborts: nothing written */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_STATUS(S3DB_ERR_VALIDATION, s3db_insert(res, "{\"id\":\"h2\",\"title\":\"bad\"}", NULL));
  EXPECT_CONTAINS(s3db_last_error(), "beforeInsert hook slug_hook");
  EXPECT_REQUESTS(db, 0, 0, 0, 0, 0, 0);
  /* invalid JSON from a hook is an error, not a crash */
  EXPECT_OK(s3db_resource_add_hook(res, "beforeUpdate", NULL, garbage_hook, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_update(res, "h1", "{\"title\":\"y\"}", NULL));
  EXPECT_OK(s3db_get(res, "h1", &out));
  EXPECT_CONTAINS(out, "\"title\":\"x\"");
  s3db_string_free(out);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_resource_add_hook(res, "beforeSave", NULL, slug_hook, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_resource_add_hook(res, "beforeInsert", NULL, NULL, NULL));
  s3db_resource_free(res);
}

static void test_update_conditional(s3db_database_t *db) {
  s3db_resource_t *res = NULL;
  char *out = NULL, etag[256] = {0};
  EXPECT_OK(s3db_create_resource(db, "cond", "{\"n\":\"number\"}", &res));
  if (res == NULL) return;
  EXPECT_OK(s3db_insert(res, "{\"id\":\"c\",\"n\":1}", NULL));
  EXPECT_OK(s3db_get_with_etag(res, "c", &out));
  json_string_field(out, "etag", etag, sizeof etag);
  CHECK(etag[0] != '\0');
  s3db_string_free(out);
  EXPECT_OK(s3db_update_conditional(res, "c", "{\"n\":2}", etag, &out));
  EXPECT_CONTAINS(out, "\"record\":{\"id\":\"c\",\"n\":2}");
  char etag2[256];
  json_string_field(out, "etag", etag2, sizeof etag2);
  CHECK(etag2[0] != '\0' && strcmp(etag2, etag) != 0); /* a new etag */
  s3db_string_free(out);
  EXPECT_STATUS(S3DB_ERR_PRECONDITION_FAILED, s3db_update_conditional(res, "c", "{\"n\":3}", etag, NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_update_conditional(res, "c", "{\"n\":3}", NULL, NULL));
  s3db_resource_free(res);
}

static void test_plugin_storage(s3db_database_t *db) {
  s3db_plugin_storage_t *ps = NULL;
  char *out = NULL, *etag = NULL;
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_plugin_storage(db, "a/b", &ps));
  EXPECT_OK(s3db_plugin_storage(db, "my-plugin", &ps));
  if (ps == NULL) return;
  EXPECT_OK(s3db_plugin_storage_key(ps, NULL, "[\"config\"]", &out));
  EXPECT_STR(out, "plugin=my-plugin/config");
  s3db_string_free(out);
  EXPECT_OK(s3db_plugin_storage_key(ps, "users", "[\"cache\",\"abc.json\"]", &out));
  EXPECT_STR(out, "resource=users/plugin=my-plugin/cache/abc.json");
  s3db_string_free(out);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_plugin_storage_key(ps, NULL, "[\"..\"]", &out));

  /* the plugin-storage vector's "config" document */
  EXPECT_OK(s3db_reset_stats(db));
  EXPECT_OK(s3db_plugin_storage_set(
      ps, "plugin=my-plugin/config",
      "{\"a\":1,\"name\":\"x\",\"flag\":true,\"list\":[1,2],\"nested\":{\"b\":2},\"text\":\"h\xc3\xa9llo\"}", NULL,
      &etag));
  EXPECT_REQUESTS(db, 0, 0, 1, 0, 0, 0);
  EXPECT_OK(s3db_plugin_storage_get(ps, "plugin=my-plugin/config", &out));
  EXPECT_STR(out, "{\"a\":1,\"flag\":true,\"list\":[1,2],\"name\":\"x\",\"nested\":{\"b\":2},\"text\":\"h\xc3\xa9llo\"}");
  s3db_string_free(out);
  char opts[512], quoted[300] = {0};
  for (size_t i = 0, j = 0; etag && etag[i] && j + 2 < sizeof quoted; i++) {
    if (etag[i] == '"') quoted[j++] = '\\';
    quoted[j++] = etag[i];
  }
  snprintf(opts, sizeof opts, "{\"if_match\":\"%s\"}", quoted);
  EXPECT_OK(s3db_plugin_storage_set(ps, "plugin=my-plugin/config", "{\"a\":2}", opts, NULL));
  EXPECT_STATUS(S3DB_ERR_PRECONDITION_FAILED,
                s3db_plugin_storage_set(ps, "plugin=my-plugin/config", "{\"a\":3}", opts, NULL));
  EXPECT_STATUS(S3DB_ERR_PRECONDITION_FAILED,
                s3db_plugin_storage_set(ps, "plugin=my-plugin/config", "{\"a\":3}", "{\"if_none_match\":true}", NULL));
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT,
                s3db_plugin_storage_set(ps, "plugin=my-plugin/config", "{\"a\":3}", "{\"behavior\":\"nope\"}", NULL));
  s3db_string_free(etag);
  EXPECT_OK(s3db_plugin_storage_set(ps, "plugin=my-plugin/bodyonly", "{\"a\":1,\"b\":\"two\"}",
                                    "{\"behavior\":\"body-only\"}", NULL));
  EXPECT_OK(s3db_plugin_storage_list(ps, NULL, NULL, &out));
  EXPECT_STR(out, "[\"plugin=my-plugin/bodyonly\",\"plugin=my-plugin/config\"]");
  s3db_string_free(out);
  bool flag = false;
  EXPECT_OK(s3db_plugin_storage_has(ps, "plugin=my-plugin/bodyonly", &flag));
  CHECK(flag);
  EXPECT_OK(s3db_plugin_storage_delete(ps, "plugin=my-plugin/bodyonly", &flag));
  CHECK(flag);
  EXPECT_OK(s3db_plugin_storage_delete(ps, "plugin=my-plugin/bodyonly", &flag));
  CHECK(!flag);
  EXPECT_OK(s3db_plugin_storage_get(ps, "plugin=my-plugin/bodyonly", &out));
  EXPECT_STR(out, "null");
  s3db_string_free(out);

  /* sequences: the vector's counter (1, 2, 3) and per-resource orders starting at 100 */
  int64_t v = 0;
  for (int i = 1; i <= 3; i++) {
    EXPECT_OK(s3db_plugin_storage_next_sequence(ps, "counter", NULL, &v));
    EXPECT_U64(v, i);
  }
  EXPECT_OK(s3db_plugin_storage_next_sequence(ps, "orders", "{\"resource\":\"users\",\"initial_value\":100}", &v));
  EXPECT_U64(v, 100);
  EXPECT_OK(s3db_plugin_storage_get_sequence(ps, "orders", "users", &out));
  EXPECT_STR(out, "101");
  s3db_string_free(out);

  /* locks */
  char *lock = NULL, *none = NULL;
  EXPECT_OK(s3db_plugin_storage_acquire_lock(ps, "job-1", "{\"ttl_ms\":30000,\"worker_id\":\"worker-A\"}", &lock));
  EXPECT_CONTAINS(lock, "\"key\":\"plugin=my-plugin/locks/job-1\"");
  EXPECT_CONTAINS(lock, "\"worker_id\":\"worker-A\"");
  EXPECT_OK(s3db_plugin_storage_acquire_lock(ps, "job-1", NULL, &none));
  EXPECT_STR(none, "null");
  s3db_string_free(none);
  EXPECT_OK(s3db_plugin_storage_release_lock(ps, lock, &flag));
  CHECK(flag);
  EXPECT_OK(s3db_plugin_storage_release_lock(ps, lock, &flag));
  CHECK(!flag);
  EXPECT_STATUS(S3DB_ERR_INVALID_ARGUMENT, s3db_plugin_storage_release_lock(ps, "{}", &flag));
  s3db_string_free(lock);
  uint64_t n = 0;
  EXPECT_OK(s3db_plugin_storage_delete_all(ps, NULL, &n));
  CHECK(n >= 1);
  s3db_plugin_storage_free(ps);
}

static void run_suite(const char *name, const char *url) {
  backend = name;
  int before = failures;
  double t0 = now_seconds();
  s3db_database_t *db = NULL;
  s3db_resource_t *res = NULL;

  EXPECT_OK(s3db_connect(url, &db));
  if (db == NULL) {
    fprintf(stderr, "[%s] cannot connect, suite skipped\n", name);
    return;
  }
  EXPECT_OK(s3db_create_resource(
      db, "users", "{\"name\":\"string|required\",\"email\":\"string|optional\"}", &res));
  if (res == NULL) {
    s3db_database_free(db);
    return;
  }
  test_arguments(db, res);
  test_data_model_arguments(db, res);
  test_records(url, db, res);
  test_etags(db, res);
  test_batches(db);
  test_listing(db);
  test_types(url, db);
  test_secrets(url);
  test_locks(url, db);
  test_sequences(db);
  test_async(url, db, res);
  test_lock_coordination(url, db);
  test_sequence_batch(db);
  test_state(db);
  test_coordinator(url, db);
  test_coordinator_lifecycle(db);
  test_healing(url, db);
  test_content(db);
  test_plugin_attributes(url, db);
  test_hooks(db);
  test_update_conditional(db);
  test_plugin_storage(db);
  s3db_resource_free(res);
  s3db_database_free(db);
  printf("  %-7s %s (%.2fs)\n", name, failures == before ? "ok" : "FAILED", now_seconds() - t0);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

int main(int argc, char **argv) {
  const char *label = argc > 1 ? argv[1] : "libs3db";
  char hex[13], url[4096];
  random_hex(hex, 6);
  printf("C tests, %s %s:\n", label, s3db_version());

  snprintf(url, sizeof url, "memory://c-test-%s", hex);
  run_suite("memory", url);

  char dir[] = "/tmp/s3db-c-test-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(url, sizeof url, "file://%s", dir);
  run_suite("file", url);
  nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);

  const char *s3 = getenv("S3DB_TEST_S3_URL");
  if (s3 != NULL && *s3 != '\0') {
    snprintf(url, sizeof url, "%s/c-%s", s3, hex);
    run_suite("s3", url);
  } else {
    printf("  s3      skipped (S3DB_TEST_S3_URL is not set)\n");
  }

  printf("C tests, %s: %d checks, %d failed\n", label, checks, failures);
  return failures == 0 ? 0 : 1;
}
