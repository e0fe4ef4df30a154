%%% @doc The `-epmd_module': distribution with no epmd anywhere.
%%%
%%% Each node listens on the port its name carries (`app-4370@10.0.0.5' on
%%% 4370) and finds peers' ports the same way, so nothing is registered and
%%% nothing is looked up over the network. Use with
%%% `-start_epmd false -epmd_module caravan_epmd'.
%%%
%%% IMPORTANT: kernel's net_sup starts this module and allows zero restarts:
%%% if this process exits, the node halts. So it traps exits, owns the C
%%% program through a caravan_port it restarts itself, and never lets a
%%% failure of that program reach net_kernel (lookups fall back to
%%% caravan_name while the program cannot answer). At boot there is no file
%%% server and no standard_error: only logger, code and ports are safe.
%%%
%%% Lookups run in the caller and read a public ETS table; only registration
%%% and the program's lifecycle go through the server (as in erl_epmd).
-module(caravan_epmd).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-include("caravan_epmd_callbacks.hrl").

%% caravan API
-export([port_of/1]).
-export([port_owner/0]).

%% gen_server callbacks
-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).

-define(TABLE, caravan_epmd_ports).
-define(PORT_OWNER, caravan_epmd_port).
%% The distribution protocol version every OTP since R6 speaks.
-define(DIST_VERSION, 6).
%% A lookup in C takes tens of microseconds; past this something is wrong
%% and the fallback answers instead, because net_kernel is waiting.
-define(LOOKUP_TIMEOUT_MS, 500).
%% Names seen are few in a real cluster; the bound only stops a stream of
%% made-up names from growing the table without end.
-define(MAX_CACHED, 10000).
%% The table's marker (not a name: names are strings) that the program did
%% not answer in time; and how often the server checks whether it answers again.
-define(DEGRADED, {'$caravan', degraded}).
-define(CHECK_INTERVAL_MS, 1000).

-record(state, {registered :: {string(), inet:port_number(), atom()} | undefined,
                owner :: pid() | undefined}).

%%%---------------------------------------------------------------------------
%%% epmd module API
%%%---------------------------------------------------------------------------

%% @doc Started by kernel's net_sup. Always `{ok, Pid}': a missing C program
%% is logged (by caravan_port) and lookups fall back to caravan_name.
-spec start_link() -> {ok, pid()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Nothing to register with: answers creation -1, which tells
%% net_kernel to pick a random 32-bit creation itself. A name whose port is
%% refused (see listen_port_please/2) is refused here, as an error tuple
%% every OTP's caller passes on: inet_tcp_dist (25) returns register_node's
%% error as is, fam_listen (26+) through its `maybe'.
-spec register_node(Name, Port) -> {ok, -1} | {error, {atom(), binary()}} when
      Name :: atom() | string(),
      Port :: inet:port_number().
register_node(Name, Port) ->
    register_node(Name, Port, inet_tcp).

-spec register_node(Name, Port, Driver) -> {ok, -1} | {error, {atom(), binary()}} when
      Name :: atom() | string(),
      Port :: inet:port_number(),
      Driver :: atom().
register_node(Name, Port, Driver) ->
    case listen_port(Name) of
        {error, _} = Refused -> Refused;
        {ok, _} -> gen_server:call(?MODULE, {register, Name, Port, Driver}, infinity)
    end.

%% @doc The port to listen on: the one in our name, or 0 (any) for hidden
%% and remote-shell helper nodes, so that `rem-a1b2-app-4370' does not try to
%% take the port of the `app-4370' it talks to.
%%
%% Never `{error, _}': every OTP's caller (inet_tcp_dist's gen_listen in 25,
%% fam_listen in 26-29) matches only `{ok, Port}', and anything else became
%% a case_clause. A name that carries no valid port is refused in one line
%% (node name and rule) instead: at boot the node then stops with status 1,
%% as net_kernel itself would, but without the case_clause; at run time this
%% answers 0 and register_node/3 refuses, so net_kernel:start/2 returns an
%% error tuple and the node stays up.
-spec listen_port_please(Name, Host) -> {ok, inet:port_number()} when
      Name :: atom() | string(),
      Host :: atom() | string() | inet:ip_address().
listen_port_please(Name, Host) ->
    case listen_port(Name) of
        {ok, Port} ->
            Port =/= 0 andalso warn_ignored_epmd_port(Port),
            listen_on_name_address(Host),
            {ok, Port};
        {error, {_Reason, Detail}} ->
            Line = io_lib:format("caravan: ~ts@~ts cannot start distribution: ~ts",
                                 [to_string(Name), host_string(Host), Detail]),
            ?LOG_ERROR("~ts", [Line], #{caravan => epmd}),
            case booting() of
                true -> stop_booting_node(Line);
                false -> {ok, 0}
            end
    end.

listen_port(Name) ->
    case is_helper() of
        true -> {ok, 0};
        false -> port_of(Name)
    end.

%% `-caravan listen_address name': listen on the address the node's name
%% carries (app-4370@10.0.0.5 on 10.0.0.5:4370) instead of every interface,
%% when that host part is an IP literal of the distribution's family. It
%% goes through kernel's inet_dist_use_interface, which inet_tcp_dist reads
%% for the listen options; an inet_dist_use_interface set by hand wins.
%% OTP 26+ read it after listen_port_please/2; OTP 25 reads it before, so it
%% is also set at boot from -name (init/1).
listen_on_name_address(Host) ->
    case caravan_config:get(listen_address, any) of
        name ->
            case {name_address(Host), application:get_env(kernel, inet_dist_use_interface)} of
                {{ok, Ip}, undefined} ->
                    application:set_env(kernel, inet_dist_use_interface, Ip);
                _ ->
                    ok
            end;
        _ ->
            ok
    end.

name_address(Host) ->
    Family = case init:get_argument(proto_dist) of
                 {ok, [[Proto | _] | _]} ->
                     case lists:prefix("inet6", Proto) of
                         true -> inet6;
                         false -> inet
                     end;
                 _ -> inet
             end,
    case inet:parse_strict_address(host_string(Host)) of
        {ok, Ip} when tuple_size(Ip) =:= 4, Family =:= inet -> {ok, Ip};
        {ok, Ip} when tuple_size(Ip) =:= 8, Family =:= inet6 -> {ok, Ip};
        _ -> error
    end.

%% The host part of -name, for listen_on_name_address/1 at boot.
boot_name_host() ->
    case init:get_argument(name) of
        {ok, [[Node | _] | _]} ->
            case caravan_name:split(Node) of
                {_, Host} when is_list(Host) -> {ok, Host};
                _ -> error
            end;
        _ ->
            error
    end.

%% Distribution started from -name/-sname while the node boots: net_kernel
%% would halt(1) after a listen error anyway (its clean_halt), but only after
%% printing its own case_clause, and without flushing our log line.
booting() ->
    element(1, init:get_status()) =:= starting andalso
        (init:get_argument(name) =/= error orelse init:get_argument(sname) =/= error).

%% Distribution starts before logger's handlers and the user process exist
%% (kernel starts net_sup first): the logged line is only buffered then, so
%% it is written to the console directly, the way net_kernel reports its
%% own boot errors. Then the node stops with status 1: no crash dump, no
%% supervisor reports.
-spec stop_booting_node(iodata()) -> no_return().
stop_booting_node(Line) ->
    erlang:display_string(lists:flatten([Line, $\n])),
    erlang:halt(1, [{flush, true}]).

%% -erl_epmd_port is erl_epmd's flag (every node on one port); with caravan
%% the name decides, so a different value there is a leftover worth a line.
warn_ignored_epmd_port(Port) ->
    case init:get_argument(erl_epmd_port) of
        {ok, [[Value | _] | _]} when Value =/= [] ->
            case string:to_integer(Value) of
                {Port, _} -> ok;
                _ -> ?LOG_WARNING("caravan_epmd: -erl_epmd_port ~ts ignored: this node listens "
                                  "on ~b, the port its name ends in", [Value, Port],
                                  #{caravan => epmd})
            end;
        _ ->
            ok
    end.

-spec port_please(Name, Ip) -> {port, inet:port_number(), ?DIST_VERSION} | noport when
      Name :: atom() | string(),
      Ip :: inet:ip_address() | string() | atom().
port_please(Name, Ip) ->
    port_please(Name, Ip, infinity).

%% @doc As erl_epmd's: answered within Timeout. The C program is given
%% what is left of it (at most the usual lookup bound); the Erlang copy of
%% the rule answers when it cannot.
-spec port_please(Name, Ip, Timeout) -> {port, inet:port_number(), ?DIST_VERSION} | noport when
      Name :: atom() | string(),
      Ip :: inet:ip_address() | string() | atom(),
      Timeout :: timeout().
port_please(Name, _Ip, Timeout) ->
    case port_of(Name, Timeout) of
        {ok, Port} -> {port, Port, ?DIST_VERSION};
        {error, _} -> noport
    end.

%% @doc Address and port in one answer, so inet_tcp_dist skips port_please.
%% Runs inside net_kernel: it must never call net_kernel.
-spec address_please(Name, Host, Family) ->
          {ok, inet:ip_address(), inet:port_number(), ?DIST_VERSION} | {error, term()} when
      Name :: string(),
      Host :: string() | atom() | inet:ip_address(),
      Family :: inet | inet6.
address_please(Name, Host, Family) ->
    case resolve(Host, Family) of
        {ok, Ip} ->
            case port_of(Name) of
                {ok, Port} -> {ok, Ip, Port, ?DIST_VERSION};
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

-spec names() -> {ok, [{string(), inet:port_number()}]} | {error, address}.
names() ->
    {ok, Host} = inet:gethostname(),
    names(Host).

%% @doc What this node knows of `Host': itself, if Host is this host, and the
%% nodes on Host it is connected to, each with the port its name carries.
-spec names(Host) -> {ok, [{string(), inet:port_number()}]} | {error, address} when
      Host :: atom() | string() | inet:ip_address().
names(Host) ->
    case host_addresses(Host) of
        [] ->
            {error, address};
        Addresses ->
            Own = case is_local(Host, Addresses) of
                      true -> own_registration();
                      false -> []
                  end,
            Peers = [{Name, Port} || Node <- nodes(connected),
                                     {Name, PeerHost} <- [caravan_name:split(Node)],
                                     host_matches(PeerHost, Host, Addresses),
                                     {ok, Port} <- [port_of(Name)]],
            {ok, lists:usort(Own ++ Peers)}
    end.

%%%---------------------------------------------------------------------------
%%% caravan API
%%%---------------------------------------------------------------------------

%% @doc The port a node name carries: from the cache, else from the C program,
%% else (program unavailable) from caravan_name.
-spec port_of(Name) -> {ok, inet:port_number()} | {error, {atom(), binary()}} when
      Name :: atom() | string() | binary().
port_of(Name) ->
    port_of(Name, ?LOOKUP_TIMEOUT_MS).

port_of(Name, Timeout) when is_atom(Name) -> port_of(atom_to_list(Name), Timeout);
port_of(Name, Timeout) when is_binary(Name) -> port_of(binary_to_list(Name), Timeout);
port_of(Name, Timeout) ->
    Bound = case Timeout of
                infinity -> ?LOOKUP_TIMEOUT_MS;
                T -> min(T, ?LOOKUP_TIMEOUT_MS)
            end,
    try ets:lookup(?TABLE, Name) of
        [{_, Port}] -> {ok, Port};
        [] -> derive(Name, Bound, true)
    catch
        error:badarg -> derive(Name, Bound, false) % the table is not there: not started
    end.

%% @doc The caravan_port owner of this node's epmd-side program.
-spec port_owner() -> atom().
port_owner() ->
    ?PORT_OWNER.

%%%---------------------------------------------------------------------------
%%% gen_server callbacks
%%%---------------------------------------------------------------------------

-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),
    logger:update_process_metadata(#{caravan => epmd}),
    ?TABLE = ets:new(?TABLE, [named_table, public, set, {read_concurrency, true}]),
    case boot_name_host() of
        {ok, Host} -> listen_on_name_address(Host);
        error -> ok
    end,
    {ok, #state{owner = start_owner()}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({register, Name, Port, Driver}, _From, State) ->
    {reply, {ok, -1}, State#state{registered = {to_string(Name), Port, Driver}}};
handle_call(registered, _From, #state{registered = Registered} = State) ->
    {reply, Registered, State};
handle_call(Request, _From, State) ->
    ?LOG_WARNING("caravan_epmd: unexpected call ~0P", [Request, 20]),
    {reply, {error, unknown_request}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(degraded, State) ->
    ?LOG_WARNING("caravan_epmd: the name program did not answer within ~b ms; names are "
                 "derived in Erlang until it answers again", [?LOOKUP_TIMEOUT_MS]),
    erlang:send_after(?CHECK_INTERVAL_MS, self(), check),
    {noreply, State};
handle_cast(Msg, State) ->
    ?LOG_WARNING("caravan_epmd: unexpected cast ~0P", [Msg, 20]),
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({'EXIT', Owner, Reason}, #state{owner = Owner} = State) ->
    %% caravan_port handles the program's deaths itself; getting here means
    %% the owner process crashed. Start a new one rather than take the node down.
    ?LOG_ERROR("caravan_epmd: port owner exited (~tp), starting a new one", [Reason]),
    {noreply, State#state{owner = start_owner()}};
handle_info({'EXIT', _Other, _Reason}, State) ->
    {noreply, State};
handle_info(check, State) ->
    %% Asked from a helper process: this server must stay free to answer
    %% registrations while the program hangs.
    Self = self(),
    _ = spawn_link(fun() -> Self ! {checked, check_program()} end),
    {noreply, State};
handle_info({checked, true}, State) ->
    ets:delete(?TABLE, ?DEGRADED),
    ?LOG_NOTICE("caravan_epmd: the name program answers again"),
    {noreply, State};
handle_info({checked, false}, State) ->
    erlang:send_after(?CHECK_INTERVAL_MS, self(), check),
    {noreply, State};
handle_info(Msg, State) ->
    ?LOG_WARNING("caravan_epmd: unexpected message ~0P", [Msg, 20]),
    {noreply, State}.

%%%---------------------------------------------------------------------------
%%% Internal
%%%---------------------------------------------------------------------------

start_owner() ->
    Options = case caravan_config:port_program() of
                  {ok, Path} -> #{program => Path};
                  {error, no_priv_dir} -> #{}
              end,
    case caravan_port:start_link(?PORT_OWNER, Options) of
        {ok, Pid} ->
            Pid;
        {error, Reason} ->
            ?LOG_ERROR("caravan_epmd: cannot start the port owner: ~tp", [Reason]),
            undefined
    end.

%% A program that did not answer in time is not asked again until it has
%% answered the server's check (see handle_info(check, _)): while it hangs,
%% every lookup is the Erlang copy's, in microseconds, and is cached like
%% the program's own answers (both apply the same rule).
derive(Name, Timeout, Cache) ->
    Default = caravan_config:default_port(),
    Args = #{name => unicode:characters_to_binary(Name), default => Default},
    Reply = case Cache andalso degraded() of
                true -> {error, degraded};
                false when Timeout =< 0 -> {error, no_time};
                false -> caravan_port:call_within(?PORT_OWNER, dist_port, Args, Timeout)
            end,
    case Reply of
        {ok, Port} when is_integer(Port) ->
            Cache andalso remember(Name, Port),
            {ok, Port};
        {error, {Reason, Detail}} = Error when is_atom(Reason), is_binary(Detail) ->
            Error; % the rule said no: the fallback would say the same
        {error, Unavailable} ->
            Cache andalso Unavailable =:= timeout andalso degrade(),
            case caravan_name:port(Name, Default) of
                {ok, Port} = Ok ->
                    Cache andalso remember(Name, Port),
                    Ok;
                Error ->
                    Error
            end
    end.

degraded() ->
    ets:member(?TABLE, ?DEGRADED).

degrade() ->
    case ets:insert_new(?TABLE, {?DEGRADED, true}) of
        true -> gen_server:cast(?MODULE, degraded);
        false -> ok
    end.

check_program() ->
    Args = #{name => <<"check-1">>, default => 0},
    caravan_port:call_within(?PORT_OWNER, dist_port, Args, ?LOOKUP_TIMEOUT_MS) =:= {ok, 1}.

remember(Name, Port) ->
    case ets:info(?TABLE, size) >= ?MAX_CACHED of
        true -> ets:delete_all_objects(?TABLE);
        false -> ok
    end,
    ets:insert(?TABLE, {Name, Port}).

own_registration() ->
    try gen_server:call(?MODULE, registered, 5000) of
        {Name, Port, _Driver} -> [{Name, Port}];
        undefined -> []
    catch
        exit:_ -> []
    end.

%% Hidden nodes and remote shells are helpers: `mix release remote' and
%% `rpc' start hidden nodes named rem-RAND-NODE, relx uses -remsh. Hidden
%% is what net_kernel decided: it records it before it listens (the
%% publish_type persistent term, set from net_kernel:start/2's `hidden'
%% option or from -hidden); before net_kernel runs, -hidden is read the way
%% net_kernel's hidden_argument/0 reads it (`-hidden false' is not hidden).
is_helper() ->
    hidden() orelse init:get_argument(remsh) =/= error.

hidden() ->
    case persistent_term:get({net_kernel, publish_type}, undefined) of
        hidden -> true;
        normal -> false;
        undefined -> hidden_argument()
    end.

hidden_argument() ->
    case init:get_argument(hidden) of
        {ok, [[] | _]} -> true;
        {ok, [["true" | _] | _]} -> true;
        _ -> false
    end.

resolve(Host, Family) when is_tuple(Host) ->
    case {Family, tuple_size(Host)} of
        {inet, 4} -> {ok, Host};
        {inet6, 8} -> {ok, Host};
        {inet6, 4} -> {ok, inet:ipv4_mapped_ipv6_address(Host)};
        _ -> {error, nxdomain}
    end;
resolve(Host, Family) when is_atom(Host) ->
    resolve(atom_to_list(Host), Family);
resolve(Host, Family) ->
    %% Not inet:getaddr/2 for an address that is not in strict form: it
    %% reads "010.0.0.1" as 8.0.0.1 (caravan_name:address/1).
    case caravan_name:address(Host) of
        {ok, Ip} -> resolve(Ip, Family);
        host_name -> inet:getaddr(Host, Family);
        ambiguous -> {error, nxdomain}
    end.

host_addresses(Host) ->
    [Ip || Family <- [inet, inet6], {ok, Ip} <- [resolve(Host, Family)]].

is_local(Host, Addresses) ->
    {ok, Own} = inet:gethostname(),
    Local = case inet:getifaddrs() of
                {ok, Ifs} -> [A || {_, Opts} <- Ifs, {addr, A} <- Opts];
                {error, _} -> []
            end,
    host_string(Host) =:= Own orelse lists:any(fun(A) -> lists:member(A, Local) end, Addresses).

host_matches(undefined, _Host, _Addresses) ->
    false;
host_matches(PeerHost, Host, Addresses) ->
    PeerHost =:= host_string(Host) orelse
        lists:any(fun(A) -> lists:member(A, Addresses) end, host_addresses(PeerHost)).

host_string(Host) when is_tuple(Host) -> inet:ntoa(Host);
host_string(Host) when is_atom(Host) -> atom_to_list(Host);
host_string(Host) -> Host.

to_string(Name) when is_atom(Name) -> atom_to_list(Name);
to_string(Name) -> Name.
