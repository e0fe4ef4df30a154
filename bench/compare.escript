#!/usr/bin/env escript
%%! -noshell
%%% The side-by-side table of `BASELINE=DIR make bench' (bench/run.sh): reads
%%% the ROW lines the benchmark escripts print with CARAVAN_BENCH_ROWS set,
%%% each prefixed by run.sh with its side (here or base), and prints every
%%% row once: this tree's median over its runs, the baseline's, the ratio
%%% (here / base), the noise band and a verdict, then one line naming every
%%% row worse beyond noise.
%%%
%%% The noise band of a row is measured in the same run: the larger of the
%%% two sides' spreads, (max - min) / median of that side's runs. A row
%%% measured once per side (the cluster rows by default) has no spread of
%%% its own and takes the median band of the rows that have one. Bands
%%% below 2% are raised to 2%: the resolution of the coarsest rows (whole
%%% milliseconds, KiB of RSS). A row is worse beyond noise when it is worse
%%% than the baseline by more than its band: for `lower' rows here / base
%%% - 1 > band, for `higher' (rates) base / here - 1 > band.
-mode(compile).

-define(FLOOR, 0.02).

main([File, BaseName]) ->
    {ok, Bin} = file:read_file(File),
    Lines = [string:split(L, "\t", all) || L <- string:split(binary_to_list(Bin), "\n", all),
             L =/= ""],
    %% {Bench, Row} -> #{unit, better, here => [V], base => [V]}, in first-seen order.
    {Order, Rows} = lists:foldl(fun add/2, {[], #{}}, Lines),
    Judged = [judge(Key, maps:get(Key, Rows)) || Key <- lists:reverse(Order)],
    Shared = [J || #{noise := B} = J <- Judged, B =/= none],
    Default = case Shared of
                  [] -> ?FLOOR;
                  _ -> median([B || #{noise := B} <- Shared])
              end,
    Final = [verdict(J, Default) || J <- Judged],
    print(Final, BaseName, Default);
main(_) ->
    io:format(standard_error, "usage: compare.escript ROWS_FILE BASELINE_NAME~n", []),
    halt(2).

add([Side, "ROW", Bench, Row, Value, Unit, Better], {Order, Rows}) ->
    Key = {Bench, Row},
    Entry = maps:get(Key, Rows, #{unit => Unit, better => list_to_atom(Better),
                                  here => [], base => []}),
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
    Band = case [spread(Vs) || Vs <- [Here, Base], length(Vs) >= 2] of
               [] -> none;
               Spreads -> lists:max(Spreads)
           end,
    E#{bench => Bench, row => Row, noise => Band}.

spread(Vs) ->
    case median(Vs) of
        M when M == 0 -> 0.0;
        M -> (lists:max(Vs) - lists:min(Vs)) / abs(M)
    end.

verdict(#{here := [], base := _} = J, _) -> J#{verdict => "only at the baseline"};
verdict(#{base := [], here := _} = J, _) -> J#{verdict => "new (no baseline row)"};
verdict(#{here := Here, base := Base, better := Better, noise := Band0} = J, Default) ->
    Band = max(?FLOOR, case Band0 of none -> Default; _ -> Band0 end),
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
                  Worse > Band -> "WORSE beyond noise";
                  Worse < -Band -> "better";
                  true -> "no worse (within noise)"
              end,
    J#{h => H, b => B, used_band => Band, own_band => Band0 =/= none, worse => Worse,
       verdict => Verdict}.

print(Rows, BaseName, Default) ->
    io:format("~nthis tree vs the baseline ~s, medians of each side's runs (runs alternated "
              "in one run of bench/run.sh)~n", [BaseName]),
    io:format("noise band: per row the larger spread (max - min) / median of either side's "
              "runs, at least ~b%;~n  rows run once per side (*) take the median band of "
              "the others: ~.1f%~n", [round(?FLOOR * 100), max(?FLOOR, Default) * 100]),
    io:format("~-8s ~-66s ~12s ~12s ~5s ~9s ~6s  ~s~n",
              ["bench", "row", "this tree", "baseline", "unit", "here/base", "band", "verdict"]),
    [io:format("~-8s ~-66ts ~12s ~12s ~5ts ~9s ~6s  ~s~n",
               [Bench, Row, value(maps:get(h, R, none), Here), value(maps:get(b, R, none), Base),
                Unit, ratio(R), noise_text(R), verdict_text(R)])
     || #{bench := Bench, row := Row, unit := Unit, here := Here, base := Base} = R <- Rows],
    Worse = [R || #{verdict := "WORSE" ++ _} = R <- Rows],
    case Worse of
        [] ->
            io:format("worse beyond noise: none (~b rows compared)~n",
                      [length([R || #{h := _} = R <- Rows])]);
        _ ->
            io:format("worse beyond noise: ~ts~n",
                      [lists:join("; ", [io_lib:format("~s: ~ts (~s, band ~s)",
                                                       [B, Row, ratio(R), noise_text(R)])
                                         || #{bench := B, row := Row} = R <- Worse])])
    end.

value(none, []) -> "-";
value(none, Vs) -> fmt(median(Vs));
value(V, _) -> fmt(V).

fmt(V) when abs(V) >= 100 -> integer_to_list(round(V));
fmt(V) -> float_to_list(float(V), [{decimals, 3}, compact]).

ratio(#{h := H, b := B}) when B /= 0 -> float_to_list(H / B, [{decimals, 3}]);
ratio(_) -> "-".

noise_text(#{used_band := Band, own_band := Own}) ->
    io_lib:format("~.1f%~s", [Band * 100, case Own of true -> ""; false -> "*" end]);
noise_text(_) -> "-".

verdict_text(#{verdict := V, better := higher}) -> V ++ " (higher is better)";
verdict_text(#{verdict := V}) -> V.

median(Vs) ->
    S = lists:sort(Vs),
    N = length(S),
    case N rem 2 of
        1 -> lists:nth(N div 2 + 1, S);
        0 -> (lists:nth(N div 2, S) + lists:nth(N div 2 + 1, S)) / 2
    end.
