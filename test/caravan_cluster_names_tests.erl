%%% The budget of node names (caravan_cluster_names), without processes:
%%% what it admits, refuses, renews and forgets.
-module(caravan_cluster_names_tests).

-include_lib("eunit/include/eunit.hrl").

names(From, To) ->
    [<<"app-4370@127.0.0.", (integer_to_binary(I))/binary>> || I <- lists:seq(From, To)].

%% Up to max_names distinct names are taken; names seen before cost
%% nothing; one new name past the cap refuses the whole answer, and counts.
admits_up_to_the_cap_test() ->
    G = caravan_cluster_names:new(#{max_names => 5}),
    ?assertEqual(ok, caravan_cluster_names:admit(G, names(1, 3))),
    ?assertEqual(ok, caravan_cluster_names:admit(G, names(1, 5))),
    ?assertEqual(ok, caravan_cluster_names:admit(G, names(2, 4))),
    ?assertMatch({error, {too_many_names, <<"the answer names 1 node(s)", _/binary>>}},
                 caravan_cluster_names:admit(G, names(1, 6))),
    ?assertMatch(#{max_names := 5, names_window := 86400000, names_seen := 5,
                   names_refused := 1, answers_refused := 0},
                 caravan_cluster_names:describe(G)).

%% Names not seen within the window no longer count.
forgets_names_older_than_the_window_test() ->
    G = caravan_cluster_names:new(#{max_names => 3, names_window => 30}),
    ?assertEqual(ok, caravan_cluster_names:admit(G, names(1, 3))),
    ?assertMatch({error, _}, caravan_cluster_names:admit(G, names(4, 6))),
    timer:sleep(50),
    ?assertEqual(ok, caravan_cluster_names:admit(G, names(4, 6))),
    ?assertMatch(#{names_seen := 3}, caravan_cluster_names:describe(G)).

%% An answer refused as too large is counted; other errors are not.
counts_answers_refused_as_too_large_test() ->
    G = caravan_cluster_names:new(#{}),
    ok = caravan_cluster_names:refused(G, {too_large, <<"x">>}),
    ok = caravan_cluster_names:refused(G, {timeout, <<"x">>}),
    ?assertMatch(#{answers_refused := 1, max_names := 100000},
                 caravan_cluster_names:describe(G)),
    ?assertEqual(ok, caravan_cluster_names:admit(none, names(1, 200000 div 1000))).

%% No atom is made for a refused answer's names (caravan_name:nodes/3).
refused_answer_makes_no_atom_test() ->
    G = caravan_cluster_names:new(#{max_names => 1}),
    Host = "unseen-host-" ++ integer_to_list(erlang:unique_integer([positive])),
    Pairs = [{4370, Host}, {4371, Host}],
    ?assertMatch({error, {too_many_names, _}}, caravan_name:nodes("app", Pairs, G)),
    ?assertError(badarg, binary_to_existing_atom(
                           list_to_binary("app-4370@" ++ Host), utf8)),
    ?assertMatch({ok, [_]}, caravan_name:nodes("app", [{4370, Host}], G)).
