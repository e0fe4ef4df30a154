%%% Loaded into the nodes of bench/scale_bench.escript: what a node notes
%%% and measures about itself, so that no control traffic is counted.
-module(caravan_scale_node).

-export([start_recorder/0]).
-export([down_time/2]).
-export([last_up/1]).
-export([forget/1]).
-export([cost/0]).
-export([cpu_ticks/0]).
-export([dial_all/1]).
-export([count_dials/0, counts/0]).
-export([reductions/0, top_reductions/2]).

%% @doc A registered process noting (wall clock, microseconds: one clock for
%% every VM on the machine) the last nodedown of each node, and the time of
%% the last nodeup of any: a leave, and a cold start's mesh, are measured
%% where they end, not by polling (asking 100 nodes every few ms what they
%% see takes the CPU the nodes being measured need). caravan_bench_node's
%% recorder notes the nodeups of each node, for joins.
-spec start_recorder() -> pid().
start_recorder() ->
    Pid = spawn(fun() -> ok = net_kernel:monitor_nodes(true), record(#{}) end),
    register(caravan_scale_recorder, Pid),
    Pid.

%% @doc When this node last saw a node come up, or none.
-spec last_up(reference()) -> integer() | none.
last_up(Ref) ->
    caravan_scale_recorder ! {get, '$last_up', self(), Ref},
    receive {Ref, T} -> T after 5000 -> none end.

%% @doc When Node last went down here, or none.
-spec down_time(node(), reference()) -> integer() | none.
down_time(Node, Ref) ->
    caravan_scale_recorder ! {get, Node, self(), Ref},
    receive {Ref, T} -> T after 5000 -> none end.

-spec forget(node()) -> ok.
forget(Node) ->
    caravan_scale_recorder ! {forget, Node},
    ok.

record(Seen) ->
    receive
        {nodedown, N} -> record(Seen#{N => erlang:system_time(microsecond),
                                      '$downs' => maps:get('$downs', Seen, 0) + 1});
        {nodeup, _} -> record(Seen#{'$last_up' => erlang:system_time(microsecond)});
        {forget, N} -> record(maps:remove(N, Seen));
        {reset_downs} -> record(maps:remove('$downs', Seen));
        {get, N, From, Ref} -> From ! {Ref, maps:get(N, Seen, none)}, record(Seen)
    end.

%% @doc What caravan costs this node: the RSS (KiB) of each of its C
%% programs (the epmd side and the lookup side), the memory (bytes) of the
%% Erlang processes caravan owns (its application's and the epmd module's
%% with its port owner) and of their ETS tables, the node's
%% distribution connections, and the VM's total memory for scale.
-spec cost() -> #{atom() => term()}.
cost() ->
    Pids = [P || P <- processes(), owned(P)],
    Mem = lists:sum([M || P <- Pids, {memory, M} <- [process_info(P, memory)]]),
    Words = erlang:system_info(wordsize),
    Ets = lists:sum([ets:info(T, memory) * Words || T <- ets:all(),
                                                   lists:member(ets:info(T, owner), Pids)]),
    Programs = [Os || Owner <- [caravan_epmd_port, caravan_lookup],
                      {ok, Os} <- [try caravan_port:os_pid(Owner) catch _:_ -> none end]],
    #{c_rss_kib => [rss_kib(Os) || Os <- Programs],
      c_pss_kib => [rollup_kib(Os, [<<"Pss">>]) || Os <- Programs],
      c_private_kib => [rollup_kib(Os, [<<"Private_Clean">>, <<"Private_Dirty">>])
                        || Os <- Programs],
      c_pids => Programs,
      erl_bytes => Mem + Ets,
      erl_processes => length(Pids),
      connections => length(nodes()),
      vm_bytes => erlang:memory(total),
      os_pid => list_to_integer(os:getpid())}.

%% @doc Dials every node of Nodes but this one, each from a process of its
%% own as caravan_cluster dials, and returns at once: the mesh without
%% discovery, for comparison.
-spec dial_all([node()]) -> ok.
dial_all(Nodes) ->
    [spawn(fun() -> net_kernel:connect_node(N) end) || N <- Nodes, N =/= node()],
    ok.

%% @doc From now on, counts the calls of net_kernel:connect_node/1 (every
%% dial, caravan's and global's) and the nodedowns seen here.
-spec count_dials() -> ok.
count_dials() ->
    _ = erlang:trace_pattern({net_kernel, connect_node, 1}, false, [call_count]),
    _ = erlang:trace_pattern({net_kernel, connect_node, 1}, true, [call_count]),
    caravan_scale_recorder ! {reset_downs},
    ok.

%% @doc Dials and nodedowns since count_dials/0.
-spec counts() -> #{dials := non_neg_integer(), downs := non_neg_integer()}.
counts() ->
    Dials = case erlang:trace_info({net_kernel, connect_node, 1}, call_count) of
                {call_count, C} when is_integer(C) -> C;
                _ -> 0
            end,
    Ref = make_ref(),
    caravan_scale_recorder ! {get, '$downs', self(), Ref},
    Downs = receive {Ref, none} -> 0; {Ref, D} -> D after 5000 -> 0 end,
    #{dials => Dials, downs => Downs}.

%% @doc Every process's reductions now, to see with top_reductions/2 which
%% processes a cold start kept busy (reductions are the VM's unit of work).
-spec reductions() -> #{pid() => non_neg_integer()}.
reductions() ->
    maps:from_list([{P, R} || P <- processes(), {reductions, R} <- [process_info(P, reductions)]]).

%% @doc The Count processes that did the most work since Before, as
%% {Reductions, Name}; Name is the registered name or the initial call
%% (proc_lib's for OTP processes), and processes of the same name summed.
-spec top_reductions(#{pid() => non_neg_integer()}, pos_integer()) -> [{non_neg_integer(), term()}].
top_reductions(Before, Count) ->
    Now = reductions(),
    Named = lists:foldl(fun({P, R}, Acc) ->
                                Name = name(P),
                                maps:update_with(Name, fun(X) -> X + R - maps:get(P, Before, 0) end,
                                                 R - maps:get(P, Before, 0), Acc)
                        end, #{}, maps:to_list(Now)),
    lists:sublist(lists:reverse(lists:sort([{R, N} || {N, R} <- maps:to_list(Named)])), Count).

name(P) ->
    case process_info(P, [registered_name, dictionary, initial_call]) of
        [{registered_name, Reg}, _, _] when is_atom(Reg), Reg =/= [] -> Reg;
        [_, {dictionary, D}, {initial_call, I}] ->
            case lists:keyfind('$initial_call', 1, D) of
                {_, Mfa} -> Mfa;
                false -> I
            end;
        _ -> gone
    end.

%% @doc utime + stime clock ticks of this VM and of its C programs.
-spec cpu_ticks() -> {non_neg_integer(), non_neg_integer()}.
cpu_ticks() ->
    #{c_pids := Programs, os_pid := Vm} = cost(),
    {ticks(Vm), lists:sum([ticks(P) || P <- Programs])}.

%% application:get_application/1 goes by group leader: the watch helpers
%% caravan's processes spawn count as caravan's too.
owned(P) ->
    case application:get_application(P) of
        {ok, caravan} -> true;
        _ -> P =:= whereis(caravan_epmd) orelse P =:= whereis(caravan_epmd_port)
    end.

rss_kib(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status") of
        {ok, Status} ->
            {match, [Kib]} = re:run(Status, <<"VmRSS:\\s+([0-9]+) kB">>,
                                    [{capture, all_but_first, binary}]),
            binary_to_integer(Kib);
        {error, _} -> 0
    end.

%% The sum of these smaps_rollup fields (KiB). Pss is the RSS with each
%% shared page divided among the processes that map it: libcurl's and
%% OpenSSL's pages, mapped by every lookup program on the host, count
%% 1/Nth in each; Private_* are the pages only this program maps.
rollup_kib(OsPid, Fields) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/smaps_rollup") of
        {ok, Rollup} ->
            lists:sum([begin
                           {match, [Kib]} = re:run(Rollup, <<"\n", F/binary, ":\\s+([0-9]+) kB">>,
                                                   [{capture, all_but_first, binary}]),
                           binary_to_integer(Kib)
                       end || F <- Fields]);
        {error, _} -> 0
    end.

ticks(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            %% After the command name in parentheses: field 14 utime, 15 stime.
            [_, Rest] = binary:split(Stat, <<") ">>),
            Fields = binary:split(Rest, <<" ">>, [global]),
            binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields));
        {error, _} -> 0
    end.
