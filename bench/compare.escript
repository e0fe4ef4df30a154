#!/usr/bin/env escript
%%! -noshell
%%% The side-by-side table of `BASELINE=DIR make bench' (bench/run.sh): reads
%%% the ROW lines the benchmark escripts print with CARAVAN_BENCH_ROWS set,
%%% each prefixed by run.sh with its side (here or base), and prints every
%%% row once: this tree's median over its runs, the baseline's, the ratio
%%% (here / base), the noise band and a verdict; then one line naming every
%%% row worse beyond noise, and one naming the reference rows (code that is
%%% not caravan's: stock epmd, cat, inet_res, the test server) outside
%%% their band, which shows how far the machine drifted in the run.
%%%
%%% The noise band of a row is measured in the same run: the sum of the two
%%% sides' spreads, (max - min) / median of that side's runs. With 3 runs a
%%% side and Gaussian noise, a row that did not change is called worse about
%%% once in 120 rows (simulated; the larger of the two spreads alone: once
%%% in 30, too often for ~100 rows). A row measured once per side (the
%%% cluster rows by default) has no spread of its own and takes the median
%%% band of the rows that have one, and is named apart when outside it: one
%%% run a side cannot tell a change from noise. Bands below 2% are raised to 2%: the
%%% resolution of the coarsest rows (whole milliseconds, KiB of RSS). A row
%%% is worse beyond noise when it is worse than the baseline by more than
%%% its band: for `lower' rows here / base - 1 > band, for `higher' ones
%%% (rates) base / here - 1 > band.
-mode(compile).

-define(FLOOR, 0.02).

main([File, BaseName]) ->
    {ok, Bin} = file:read_file(File),
    Lines = [string:split(L, "\t", all) || L <- string:split(binary_to_list(Bin), "\n", all),
             L =/= ""],
    %% {Bench, Row} -> #{unit, better, ref, here => [V], base => [V]}, in first-seen order.
    {Order, Rows} = lists:foldl(fun add/2, {[], #{}}, Lines),
    Judged = [judge(Key, maps:get(Key, Rows)) || Key <- lists:reverse(Order)],
    Default = case [N || #{noise := N} <- Judged, N =/= none] of
                  [] -> ?FLOOR;
                  Noises -> median(Noises)
              end,
    print([verdict(J, Default) || J <- Judged], BaseName, Default);
main(_) ->
    io:format(standard_error, "usage: compare.escript ROWS_FILE BASELINE_NAME~n", []),
    halt(2).

add([Side, "ROW", Bench, Row, Value, Unit, Better | Ref], {Order, Rows}) ->
    Key = {Bench, Row},
    Entry = maps:get(Key, Rows, #{unit => Unit, better => list_to_atom(Better),
                                  ref => Ref =:= ["reference"], here => [], base => []}),
    S = list_to_atom(Side),
    Order1 = case maps:is_key(Key, Rows) of
                 true -> Order;
                 false -> [Key | Order]
             end,
    {Order1, Rows#{Key => Entry#{S => maps:get(S, Entry) ++ [number(Value)]}}};
add(_Other, Acc) ->
    Acc.

number(Text) ->
    try list_to_float(Text)
    catch error:badarg -> float(list_to_integer(Text))
    end.

judge({Bench, Row}, #{here := Here, base := Base} = E) ->
    Noise = case [spread(Vs) || Vs <- [Here, Base], length(Vs) >= 2] of
                [] -> none;
                [One] -> 2 * One;
                [A, B] -> A + B
            end,
    E#{bench => Bench, row => Row, noise => Noise}.

spread(Vs) ->
    case median(Vs) of
        M when M == 0 -> 0.0;
        M -> (lists:max(Vs) - lists:min(Vs)) / abs(M)
    end.

verdict(#{here := []} = J, _) -> J#{verdict => "only at the baseline"};
verdict(#{base := []} = J, _) -> J#{verdict => "new (no baseline row)"};
verdict(#{here := Here, base := Base, better := Better, noise := Noise} = J, Default) ->
    Band = max(?FLOOR, case Noise of none -> Default; _ -> Noise end),
    H = median(Here),
    B = median(Base),
    Worse = case {Better, H, B} of
                {_, X, Y} when X == Y -> 0.0;
                {lower, _, Y} when Y == 0 -> infinity;
                {lower, X, Y} -> X / Y - 1;
                {higher, X, _} when X == 0 -> infinity;
                {higher, X, Y} -> Y / X - 1
            end,
    Verdict = if
                  Worse =:= infinity -> "WORSE";
                  Worse > Band, Noise =:= none -> "WORSE? (one run a side: not judged)";
                  Worse > Band -> "WORSE beyond noise";
                  Worse < -Band -> "better";
                  true -> "no worse (within noise)"
              end,
    J#{h => H, b => B, used_band => Band, own_band => Noise =/= none, verdict => Verdict}.

print([], _, _) ->
    io:format("~nno ROW lines: no benchmark finished (see the logs)~n"),
    halt(1);
print(Rows, BaseName, Default) ->
    Runs = fun(Side) -> lists:max([length(maps:get(Side, R)) || R <- Rows]) end,
    io:format("~nthis tree vs the baseline ~s: medians of up to ~b runs of this tree and ~b of "
              "the baseline, alternated in one run~n", [BaseName, Runs(here), Runs(base)]),
    io:format("band: the sum of both sides' spreads, (max - min) / median of their runs, at "
              "least ~b%; rows run once~n  per side (*) take the median band of the others: "
              "~.1f%. ratio: this tree / the baseline (rates: higher is better)~n",
              [round(?FLOOR * 100), max(?FLOOR, Default) * 100]),
    W = lists:max([length(Row) + 7 || #{row := Row} <- Rows]),
    Format = "~-8s ~-" ++ integer_to_list(W) ++ "ts ~12s ~12s ~-4ts ~7s ~7s  ~s~n",
    io:format(Format, ["bench", "row", "this tree", "baseline", "unit", "ratio", "band",
                       "verdict"]),
    [io:format(Format, [Bench, [Row | ref_mark(R)], value(maps:get(h, R, none), Here),
                        value(maps:get(b, R, none), Base), Unit, ratio(R), band_text(R),
                        verdict_text(R)])
     || #{bench := Bench, row := Row, unit := Unit, here := Here, base := Base} = R <- Rows],
    Outside = [R || #{verdict := "WORSE" ++ _} = R <- Rows],
    Compared = length([R || #{h := _, ref := false, own_band := true} = R <- Rows]),
    case [R || #{ref := false, own_band := true} = R <- Outside] of
        [] -> io:format("worse beyond noise: none (~b rows with a band of their own)~n",
                        [Compared]);
        Worse -> io:format("worse beyond noise: ~b of ~b rows with a band of their own: ~ts~n",
                           [length(Worse), Compared, names(Worse)])
    end,
    case [R || #{ref := false, own_band := false} = R <- Outside] of
        [] -> ok;
        Once -> io:format("worse beyond the borrowed band (*), run once a side, so not judged; "
                          "rerun them with more rounds (BENCH_CLUSTER_ROUNDS=3 BENCH_ONLY=cluster):"
                          " ~ts~n", [names(Once)])
    end,
    case [R || #{ref := true} = R <- Outside] of
        [] -> ok;
        Refs -> io:format("reference rows (not caravan's code) worse beyond their band, "
                          "the machine's drift: ~ts~n", [names(Refs)])
    end.

names(Rows) ->
    lists:join("; ", [io_lib:format("~s: ~ts (~s)", [B, Row, ratio(R)])
                      || #{bench := B, row := Row} = R <- Rows]).

ref_mark(#{ref := true}) -> " [ref]";
ref_mark(_) -> "".

value(none, []) -> "-";
value(none, Vs) -> fmt(median(Vs));
value(V, _) -> fmt(V).

fmt(V) when abs(V) >= 100 -> integer_to_list(round(V));
fmt(V) -> float_to_list(float(V), [{decimals, 3}, compact]).

ratio(#{h := H, b := B}) when B /= 0 -> float_to_list(H / B, [{decimals, 3}]);
ratio(_) -> "-".

band_text(#{used_band := Band, own_band := Own}) ->
    io_lib:format("~.1f%~s", [Band * 100, case Own of true -> ""; false -> "*" end]);
band_text(_) -> "-".

verdict_text(#{verdict := V, better := higher}) -> V ++ " (higher is better)";
verdict_text(#{verdict := V}) -> V.

median(Vs) ->
    S = lists:sort(Vs),
    N = length(S),
    case N rem 2 of
        1 -> lists:nth(N div 2 + 1, S);
        0 -> (lists:nth(N div 2, S) + lists:nth(N div 2 + 1, S)) / 2
    end.
