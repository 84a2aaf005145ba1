/* test_prompts.c: prompts: tokenizing behind a prompt (equal to tokenizing the joined text, the
 * prompt counted in the length), reading config_sentence_transformers.json's prompts, and a
 * saved folder keeping them and the file's other fields. */
#include "gc_bert.h"
#include "gc_io.h"
#include "gc_prompts.h"
#include "gc_tokenizer.h"
#include "test_util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define TINY GC_SOURCE_DIR "/tests/fixtures/bert/tiny"

static int same_list(const gc_token_list *a, const gc_token_list *b) {
    if (a->n != b->n || a->offsets[a->n] != b->offsets[b->n]) return 0;
    for (size_t i = 0; i <= a->n; i++)
        if (a->offsets[i] != b->offsets[i]) return 0;
    return memcmp(a->ids, b->ids, (size_t)a->offsets[a->n] * sizeof(int32_t)) == 0;
}

static void test_tokenize(const gc_tokenizer *tok) {
    const char *texts[3] = {"hello world", "", "a much longer text that will be cut short here"};
    const char *joined[3] = {"query: hello world",
                             "query: ", "query: a much longer text that will be cut short here"};
    gc_token_list a = {0}, b = {0}, c = {0};
    size_t bad = 0;
    CHECK_OK(gc_tokenize_many_prompt(tok, "query: ", texts, 3, 8, &a, &bad));
    CHECK_OK(gc_tokenize_many(tok, joined, 3, 8, &b, &bad));
    CHECK(a.n == 3 && same_list(&a, &b), "prompt + text tokenized together");
    CHECK(a.offsets[3] - a.offsets[2] == 8, "the prompt counts in max_len");
    CHECK_OK(gc_tokenize_many(tok, texts, 3, 8, &c, &bad));
    CHECK(!same_list(&a, &c), "the prompt changes the ids");
    gc_token_list_free(&a);
    CHECK_OK(gc_tokenize_many_prompt(tok, "", texts, 3, 8, &a, &bad));
    CHECK(same_list(&a, &c), "an empty prompt is none");
    gc_token_list_free(&a);
    CHECK_OK(gc_tokenize_many_prompt(tok, NULL, texts, 3, 8, &a, &bad));
    CHECK(same_list(&a, &c), "a NULL prompt is none");
    gc_token_list_free(&a);
    gc_token_list_free(&b);
    gc_token_list_free(&c);
}

static void write_config(const char *dir, const char *text) {
    char path[512];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config_sentence_transformers.json", dir);
    CHECK_OK(gc_write_file_atomic(path, text, strlen(text)));
}

static void test_read(void) {
    gc_prompts p = {0};
    CHECK_OK(gc_prompts_read(&p, TINY));
    CHECK(p.n == 2 && gc_prompts_get(&p, "query") && !*gc_prompts_get(&p, "query"),
          "tiny's empty query prompt");
    CHECK(gc_prompts_get(&p, "passage") && !*gc_prompts_get(&p, "passage"),
          "passage falls back to document");
    CHECK(gc_prompts_get(&p, "other") == NULL, "an absent prompt");
    CHECK_OK(gc_prompts_set(&p, "passage", "passage: "));
    CHECK(!strcmp(gc_prompts_get(&p, "passage"), "passage: ") &&
              !strcmp(gc_prompts_get(&p, "document"), "passage: "),
          "setting passage updates document");
    CHECK_OK(gc_prompts_set(&p, "query", "query: "));
    CHECK(p.n == 3 && !strcmp(gc_prompts_get(&p, "query"), "query: "), "replaced, added");
    gc_prompts_free(&p);

    char dir[256];
    snprintf(dir, sizeof dir, "%s/test_prompts_cfg", GC_BINARY_DIR);
    mkdir(dir, 0755);
    char path[512];
    snprintf(path, sizeof path, "%s/config_sentence_transformers.json", dir);
    remove(path);
    CHECK_OK(gc_prompts_read(&p, dir));
    CHECK(p.n == 0 && p.config == NULL, "no file: no prompts");
    write_config(dir, "{\"prompts\": {\"query\": \"query: \", \"passage\": \"passage: \"}}");
    CHECK_OK(gc_prompts_read(&p, dir));
    CHECK(p.n == 2 && !strcmp(gc_prompts_get(&p, "passage"), "passage: "), "E5 prompts");
    gc_prompts_free(&p);
    write_config(dir, "{\"prompts\": null}");
    CHECK_OK(gc_prompts_read(&p, dir));
    CHECK(p.n == 0, "null prompts");
    gc_prompts_free(&p);
    static const char *bad[4][2] = {
        {"{\"prompts\": [\"q\"]}", "not an object"},
        {"{\"prompts\": {\"query\": 5}}", "\"query\" is not a string"},
        {"{\"prompts\": {\"query\": \"q\"", "malformed JSON"},
        {"[1]", "not a JSON object"},
    };
    for (int i = 0; i < 4; i++) {
        write_config(dir, bad[i][0]);
        CHECK(gc_prompts_read(&p, dir) == GC_ERR_FORMAT, "bad %d refused", i);
        CHECK(strstr(gc_last_error(), bad[i][1]) && strstr(gc_last_error(), "test_prompts_cfg"),
              "message '%s' lacks '%s'", gc_last_error(), bad[i][1]);
        CHECK(p.n == 0, "nothing kept");
    }
    remove(path);
}

static void test_save(void) {
    gc_bert *m = NULL;
    CHECK_OK(gc_bert_load(&m, TINY));
    if (!m) return;
    gc_prompts *p = gc_bert_prompts(m);
    CHECK(p && p->n == 2, "the model carries its folder's prompts");
    CHECK_OK(gc_prompts_set(p, "query", "query: "));
    CHECK_OK(gc_prompts_set(p, "passage", "passage: "));
    char dir[256];
    snprintf(dir, sizeof dir, "%s/test_prompts_saved", GC_BINARY_DIR);
    CHECK_OK(gc_bert_save(m, dir, TINY));
    gc_bert_free(m);
    char path[512];
    snprintf(path, sizeof path, "%s/config_sentence_transformers.json", dir);
    json_t *root = json_load_file(path, 0, NULL);
    CHECK(root != NULL, "saved config reads");
    if (root) {
        json_t *pr = json_object_get(root, "prompts");
        CHECK(!strcmp(json_string_value(json_object_get(pr, "query")), "query: "), "query");
        CHECK(!strcmp(json_string_value(json_object_get(pr, "passage")), "passage: "), "passage");
        CHECK(!strcmp(json_string_value(json_object_get(pr, "document")), "passage: "), "document");
        CHECK(
            !strcmp(json_string_value(json_object_get(root, "model_type")), "SentenceTransformer"),
            "other fields kept");
        json_t *ver = json_object_get(root, "__version__");
        CHECK(json_object_get(ver, "sentence_transformers") && json_object_get(ver, "gradcache"),
              "versions kept and ours added");
        CHECK(json_is_null(json_object_get(root, "default_prompt_name")), "default_prompt_name");
        CHECK(!strcmp(json_string_value(json_object_get(root, "similarity_fn_name")), "cosine"),
              "similarity");
        json_decref(root);
    }
    m = NULL;
    CHECK_OK(gc_bert_load(&m, dir));
    if (m) {
        CHECK(!strcmp(gc_prompts_get(gc_bert_prompts(m), "query"), "query: "), "reloaded");
        gc_bert_free(m);
    }
}

int main(void) {
    gc_tokenizer *tok = NULL;
    CHECK_OK(gc_tokenizer_load(&tok, TINY));
    if (tok) test_tokenize(tok);
    gc_tokenizer_free(tok);
    test_read();
    test_save();
    return test_summary("test_prompts");
}
