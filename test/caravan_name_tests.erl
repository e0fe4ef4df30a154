%%% The name -> port rule: caravan_name (the Erlang fallback) and the C
%%% program must agree on every name, errors included.
-module(caravan_name_tests).

-include_lib("eunit/include/eunit.hrl").

-define(OWNER, caravan_name_test_owner).

names() ->
    ["app-4370", "node3434", "app-name-4834", "app", "app-0", "app-65536", "app-65535",
     "app-1", "app-007", lists:duplicate(30, $9), "", "@host", "app-4370@10.0.0.5",
     "rem-a1b2-app-4370", "x" ++ lists:duplicate(254, $a), "x" ++ lists:duplicate(255, $a),
     "n\x{e9}ud-4370", "a b-1", "tab\t-2", "app@host9"].

agree_test_() ->
    {setup,
     fun() ->
             {ok, Path} = caravan_config:port_program(),
             {ok, Pid} = caravan_port:start_link(?OWNER, #{program => Path}),
             unlink(Pid),
             Pid
     end,
     fun(Pid) -> exit(Pid, shutdown) end,
     [{lists:flatten(io_lib:format("~w with default ~b", [Name, Default])),
       fun() ->
               Bin = unicode:characters_to_binary(element(1, caravan_name:split(Name))),
               FromC = caravan_port:call(?OWNER, dist_port, #{name => Bin, default => Default},
                                         2000),
               FromErlang = caravan_name:port(Name, Default),
               ?assertEqual(reason(FromC), reason(FromErlang)),
               case FromC of
                   {error, {_, DetailC}} ->
                       {error, {_, DetailErl}} = FromErlang,
                       %% Same first words (the byte offset differs by design).
                       ?assertEqual(binary:part(DetailC, 0, 9), binary:part(DetailErl, 0, 9));
                   _ -> ok
               end
       end} || Name <- names(), Default <- [4370, 0]]}.

reason({ok, Port}) -> {ok, Port};
reason({error, {Reason, _}}) -> {error, Reason}.

split_test_() ->
    [?_assertEqual({"app-1", "h"}, caravan_name:split('app-1@h')),
     ?_assertEqual({"app-1", "::1"}, caravan_name:split(<<"app-1@::1">>)),
     ?_assertEqual({"app-1", undefined}, caravan_name:split("app-1"))].

%%% The configured default port, against expected numbers (not against
%%% the other implementation): 4370 unless set, from the application
%%% environment, and from `-caravan default_port N' on the command line.

default_port_is_4370_test() ->
    Loaded = lists:keymember(caravan, 1, application:loaded_applications()),
    _ = application:unload(caravan),
    try
        %% Nothing loaded, nothing on the command line: the code's default.
        ?assertEqual(4370, caravan_config:default_port()),
        %% The .app file's environment says the same.
        ok = application:load(caravan),
        ?assertEqual({ok, 4370}, application:get_env(caravan, default_port)),
        ?assertEqual(4370, caravan_config:default_port()),
        ?assertEqual({ok, 4370}, caravan_name:port("app", caravan_config:default_port()))
    after
        Loaded orelse application:unload(caravan)
    end.

default_port_from_application_env_test() ->
    _ = application:load(caravan),
    {ok, Old} = application:get_env(caravan, default_port),
    try
        ok = application:set_env(caravan, default_port, 4411),
        ?assertEqual(4411, caravan_config:default_port()),
        %% A lookup outside a running node (no table, no program owner)
        %% answers from the Erlang rule with the configured default.
        ?assertEqual({ok, 4411}, caravan_epmd:port_of("app")),
        %% 1.0.1's Caravan.Epmd.dist_port/1 agrees with caravan's rule.
        ?assertEqual(4411, 'Elixir.Caravan.Epmd':dist_port('app@h')),
        ?assertEqual(4411, 'Elixir.Caravan.Epmd':dist_port(<<"app">>))
    after
        application:set_env(caravan, default_port, Old)
    end.

default_port_from_command_line_test_() ->
    {timeout, 60,
     fun() ->
             Ebin = filename:dirname(code:which(caravan_config)),
             %% caravan_epmd's rule and 1.0.1's Caravan.Epmd.dist_port/1
             %% must agree on the port of a name without digits.
             Eval = "io:format(\"~p ~p ~p~n\", [caravan_config:default_port(), "
                    "caravan_epmd:port_of(\"app\"), "
                    "erlang:apply(list_to_atom(\"Elixir.Caravan.Epmd\"), dist_port, "
                    "[list_to_atom(\"app@h\")])]), halt(0).",
             Out = os:cmd(io_lib:format("erl -noshell -pa ~ts -caravan default_port 4412 "
                                        "-eval '~ts' 2>&1", [Ebin, Eval])),
             ?assertEqual("4412 {ok,4412} 4412", string:trim(Out)),
             Unset = os:cmd(io_lib:format("erl -noshell -pa ~ts -eval '~ts' 2>&1", [Ebin, Eval])),
             ?assertEqual("4370 {ok,4370} 4370", string:trim(Unset))
     end}.

%% nodes/2 leaves out a pair whose name would not fit in an atom (it used
%% to raise system_limit and fail the whole answer) and keeps the others.
nodes_leave_out_names_too_long_for_an_atom_test() ->
    Long = lists:duplicate(250, $a),
    ?assertEqual(['app-1@10.0.0.1'],
                 caravan_name:nodes("app", [{1, "10.0.0.1"}, {2, Long}, {1, {10, 0, 0, 1}}])),
    ?assert(caravan_name:fits("app", 1, lists:duplicate(249, $a))),
    ?assertNot(caravan_name:fits("app", 1, Long)).

%% Issue 18 (attacker, items 8-9): a host that names no node was named:
%% node("app", 4370, "") gave 'app-4370@', "a@b" a name that splits on
%% the wrong '@', "a b" and "a\0b" names no resolver takes. node/3 raises
%% {not_a_host, Host} for them, and nodes/2 leaves them out, keeping the
%% others.
hosts_that_name_no_node_test() ->
    Bad = ["", <<>>, "a b", "a@b", <<"a@b">>, "a\0b", <<"a", 0, "b">>, "a\nb", "h\x{e9}"],
    [?assertError({not_a_host, Host}, caravan_name:node("app", 4370, Host)) || Host <- Bad],
    ?assertEqual(['app-1@10.0.0.1', 'app-1@n1.example'],
                 caravan_name:nodes("app", [{1, "10.0.0.1"}, {1, "n1.example"}
                                            | [{1, Host} || Host <- Bad]])),
    ?assertEqual('app-4370@n1-a.example', caravan_name:node(<<"app">>, 4370, <<"n1-a.example">>)).
