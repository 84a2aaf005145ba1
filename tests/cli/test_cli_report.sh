# test_cli_report.sh: the training report and the Matryoshka options on the command line.
# train writes LOG.html beside its log (an options record first in the log), --report and
# --no-report choose; `gradcache report` redraws a log; --matryoshka trains, is checked and is
# part of the resume fingerprint; eval and encode --dim truncate.
. "$(dirname "$0")/lib.sh"

make_tiny "$TMP/tiny" # hidden 32
D="$FIX/pairs.jsonl"
T=(--model "$TMP/tiny" --train "$D" --batch-size 8 --chunk-size 3 --steps 3 --threads 1)

ok "report --help" "$G" report --help
check "report --help on stdout" grep -q "Usage: gradcache report" "$TMP/out"
ok "--help lists report" "$G" --help
check "overview names report" grep -q "^  report " "$TMP/out"

ok "train with a log and dev" "$G" train "${T[@]}" --dev "$D" --out "$TMP/a" --log "$TMP/a.jsonl"
check "an options record first" grep -q '^{"options": {"model": ' <(head -1 "$TMP/a.jsonl")
check "the report beside the log" test -s "$TMP/a.html"
check "the report is not in the model folder" test ! -e "$TMP/a/report.html"
check "train names the report" grep -q "training report in $TMP/a.html" "$TMP/err"
check "one chart per step field and the dev chart" test "$(grep -c '<svg' "$TMP/a.html")" -eq 8
check "dev table of 2 evaluations" test "$(grep -c '<tr><td class="num">' "$TMP/a.html")" -eq 2
check "options shown" grep -q '<td class="key">batch_size</td><td>8</td>' "$TMP/a.html"

ok "report of the log" "$G" report "$TMP/a.jsonl" -o "$TMP/again.html"
check "the same page" cmp -s "$TMP/a.html" "$TMP/again.html"
ok "report with the default name" "$G" report --out="$TMP/b.html" "$TMP/a.jsonl"
cp "$TMP/a.jsonl" "$TMP/c.log"
ok "report of a .log" "$G" report "$TMP/c.log"
check "c.log -> c.html" test -s "$TMP/c.html"

ok "train --no-report" "$G" train "${T[@]}" --out "$TMP/n" --log "$TMP/n.jsonl" --no-report
check "no report" test ! -e "$TMP/n.html"
ok "train --report FILE" "$G" train "${T[@]}" --out "$TMP/r" --log "$TMP/r.jsonl" --report "$TMP/mine.html"
check "the report where asked" test -s "$TMP/mine.html"
ok "train without a log" "$G" train "${T[@]}" --out "$TMP/nolog"
check "no report without a log" test -z "$(find "$TMP/nolog" -name '*.html')"

fails "report without a log" 2 "log file" "$G" report
fails "report of a missing log" 1 "missing.jsonl" "$G" report "$TMP/missing.jsonl"
fails "report with two logs" 2 "one log" "$G" report "$TMP/a.jsonl" "$TMP/c.log"
fails "report with an unknown option" 2 "unknown option" "$G" report "$TMP/a.jsonl" --frobnicate
fails "--report without --log" 2 "needs --log" "$G" train "${T[@]}" --out "$TMP/x" --report "$TMP/x.html"

# Matryoshka
ok "train --matryoshka" "$G" train "${T[@]}" --out "$TMP/m" --log "$TMP/m.jsonl" --matryoshka 32,16:0.5,8 --stop-after 2
check "the setting in the options record" grep -q '"matryoshka": "32:1,16:0.5,8:1"' "$TMP/m.jsonl"
check "the Matryoshka loss is not the plain one" not cmp -s \
    <(grep -o '"loss": [0-9.]*' "$TMP/m.jsonl" | head -1) <(grep -o '"loss": [0-9.]*' "$TMP/n.jsonl" | head -1)
fails "resume with other sizes" 1 "matryoshka" "$G" train "${T[@]}" --out "$TMP/m" --resume --matryoshka 32,16
fails "resume without it" 1 "matryoshka" "$G" train "${T[@]}" --out "$TMP/m" --resume
ok "resume with the same sizes" "$G" train "${T[@]}" --out "$TMP/m" --resume --matryoshka 32,16:0.5,8 --log "$TMP/m.jsonl"
fails "a plain checkpoint resumed with --matryoshka" 1 "matryoshka" "$G" train "${T[@]}" --out "$TMP/n" --resume --matryoshka 16
fails "--matryoshka syntax" 2 "matryoshka" "$G" train "${T[@]}" --out "$TMP/x" --matryoshka 32,,16
fails "--matryoshka size twice" 2 "twice" "$G" train "${T[@]}" --out "$TMP/x" --matryoshka 16,16
fails "--matryoshka wider than the model" 2 "outside \[1, 32\]" "$G" train "${T[@]}" --out "$TMP/x" --matryoshka 64

ok "eval --dim 8" "$G" eval --model "$TMP/m" --data "$D" --dim 8
cp "$TMP/out" "$TMP/e8"
ok "eval full" "$G" eval --model "$TMP/m" --data "$D"
check "--dim changes the metrics" not cmp -s "$TMP/e8" "$TMP/out"
ok "eval --dim 32 (the whole width)" "$G" eval --model "$TMP/m" --data "$D" --dim 32
check "--dim 32 is the full evaluation" cmp -s "$TMP/out" <("$G" eval --model "$TMP/m" --data "$D")
fails "eval --dim too wide" 2 "--dim 33" "$G" eval --model "$TMP/m" --data "$D" --dim 33
ok "encode --dim 8" "$G" encode --model "$TMP/m" --input "$D" --field query --out "$TMP/q8.npy" --dim 8
check "encode wrote (64, 8)" grep -qa "'shape': (64, 8)" <(head -c 128 "$TMP/q8.npy")
fails "encode --dim too wide" 2 "--dim 40" "$G" encode --model "$TMP/m" --input "$D" --field query --out "$TMP/q.npy" --dim 40

finish test_cli_report
