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
