%%% A real BIND (named, Debian's bind9) for the tests: one `consul.' zone
%%% shaped like Consul's DNS answers (SRV records whose targets' A/AAAA
%%% records BIND adds to the ADDITIONAL section, as Consul does), listening
%%% on 127.0.0.1 and ::1 on a free high port, updatable with nsupdate,
%%% stopped by its own pid.
-module(caravan_test_bind).

-export([start/2]).
-export([stop/1]).
-export([port/1]).
-export([server/1]).
-export([nsupdate/2]).
-export([srv_records/4]).
-export([restart/1]).

-define(NAMED, "/usr/sbin/named").
-define(NSUPDATE, "/usr/bin/nsupdate").

-type bind() :: #{port := port(), os_pid := non_neg_integer(), dns_port := inet:port_number(),
                  dir := file:filename(), origin => string()}.

%% @doc Starts named in Dir serving `consul.' with the given zone lines
%% (relative to `consul.', e.g. "app.service SRV 1 1 4371 n1.node.dc1").
%% Options: `extra_listen => [{"127.0.0.54", 53}]' adds listening addresses.
-spec start(file:filename(), #{records := [iodata()], extra_listen => [{string(), 1..65535}],
                               origin => string()}) ->
          bind().
start(Dir, Options) ->
    start(Dir, Options, 5).

%% The port is found free, then closed, then bound by named: something else
%% may take it in between. named then says so on stderr, and start tries
%% another port rather than fail the suite.
start(Dir, Options, Attempts) ->
    try
        start_on(Dir, Options, free_udp_tcp_port(20))
    catch
        error:port_taken when Attempts > 1 -> start(Dir, Options, Attempts - 1)
    end.

start_on(Dir, #{records := Records} = Options, DnsPort) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    %% `origin => "cluster.local"' serves that zone instead of consul.
    Origin = maps:get(origin, Options, "consul"),
    Zone = filename:join(Dir, "consul.zone"),
    ok = file:write_file(Zone, zone(Origin, Records)),
    %% Suites of one run share their priv_dir: an earlier suite's dynamic
    %% updates left a journal that does not fit this zone, and named would
    %% refuse to load it (SERVFAIL for the whole zone).
    _ = file:delete(Zone ++ ".jnl"),
    Conf = filename:join(Dir, "named.conf"),
    %% Port 0 in extra_listen means BIND's own port.
    Extra = [io_lib:format("  listen-on port ~b { ~s; };~n", [case P of 0 -> DnsPort; _ -> P end, Ip])
             || {Ip, P} <- maps:get(extra_listen, Options, [])],
    ok = file:write_file(Conf, io_lib:format(
        "options {~n"
        "  directory \"~ts\";~n"
        "  pid-file \"~ts/named.pid\";~n"
        "  session-keyfile \"~ts/session.key\";~n"
        "  listen-on port ~b { 127.0.0.1; };~n"
        "~s"
        "  listen-on-v6 port ~b { ::1; };~n"
        "  recursion no;~n"
        "  dnssec-validation no;~n"
        "  notify no;~n"
        %% 300-instance services: BIND 9.18.28+ caps an RRset at 100 records.
        "  max-records-per-type 0;~n"
        %% BIND's default is 10: 100 nodes connecting at once (a cold start
        %% over TCP) overflowed it, and most waited for the kernel's SYN
        %% resend, a second later. The server it stands for, Consul's DNS
        %% interface (Go's net.Listen), queues up to the kernel's somaxconn.
        "  tcp-listen-queue 4096;~n"
        "  allow-query { 127.0.0.0/8; ::1; 198.18.0.0/15; };~n"
        "};~n"
        "controls { };~n"
        "zone \"~s.\" { type primary; file \"~ts\"; allow-update { 127.0.0.0/8; }; };~n",
        [Dir, Dir, Dir, DnsPort, Extra, DnsPort, Origin, Zone])),
    run(#{dns_port => DnsPort, dir => Dir, origin => Origin}).

%% @doc Starts named again after stop/1, on the same port with the same zone.
-spec restart(bind()) -> bind().
restart(#{dns_port := DnsPort, dir := Dir} = Bind) ->
    run(#{dns_port => DnsPort, dir => Dir, origin => maps:get(origin, Bind, "consul")}).

run(#{dir := Dir} = Bind0) ->
    %% -g: foreground, log to stderr (which we read); -n 1: one worker is plenty.
    Port = open_port({spawn_executable, ?NAMED},
                     [{args, ["-g", "-n", "1", "-c", filename:join(Dir, "named.conf")]},
                      exit_status, stderr_to_stdout, {line, 1024}]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Bind = Bind0#{port => Port, os_pid => OsPid},
    wait_ready(Bind, 100),
    Bind.

%% @doc Stops named by its pid and waits for it to exit.
-spec stop(bind()) -> ok.
stop(#{port := Port, os_pid := OsPid}) ->
    _ = os:cmd("kill -TERM " ++ integer_to_list(OsPid)),
    wait_exit(Port, OsPid).

-spec port(bind()) -> inet:port_number().
port(#{dns_port := P}) -> P.

%% @doc "127.0.0.1:PORT", as caravan's servers option takes it.
-spec server(bind()) -> string().
server(#{dns_port := P}) -> "127.0.0.1:" ++ integer_to_list(P).

%% @doc Runs nsupdate (over TCP) with the given update lines, e.g.
%% "update add app.service.consul. 0 SRV 1 1 4371 n9.node.dc1.consul.".
-spec nsupdate(bind(), [iodata()]) -> ok.
nsupdate(#{dns_port := P, dir := Dir}, Lines) ->
    File = filename:join(Dir, "nsupdate.txt"),
    ok = file:write_file(File, [io_lib:format("server 127.0.0.1 ~b~n", [P]),
                                [[L, $\n] || L <- Lines], "send\n"]),
    Out = os:cmd(?NSUPDATE ++ " -v " ++ File ++ " 2>&1; echo rc=$?"),
    case lists:suffix("rc=0\n", Out) of
        true -> ok;
        false -> error({nsupdate_failed, Out})
    end.

%% @doc Zone lines for Count instances of Service: SRV records to targets
%% `Service-i.node.dc1' with A records 127.Net.(i div 256).(i rem 256),
%% ports 20000 + i.
-spec srv_records(string(), pos_integer(), 1..255, string()) -> [iolist()].
srv_records(Service, Count, Net, Owner) ->
    lists:append(
      [[io_lib:format("~s SRV 1 1 ~b ~s-~b.node.dc1", [Owner, 20000 + I, Service, I]),
        io_lib:format("~s-~b.node.dc1 A 127.~b.~b.~b", [Service, I, Net, I div 256, I rem 256])]
       || I <- lists:seq(1, Count)]).

%%% internal

zone(Origin, Records) ->
    ["$ORIGIN ", Origin, ".\n$TTL 0\n",
     "@ SOA ns hostmaster 1 3600 600 86400 0\n",
     "@ NS ns\n",
     "ns A 127.0.0.1\n",
     [[R, $\n] || R <- lists:usort([iolist_to_binary(R) || R <- Records])]].

%% A port free for both UDP and TCP on 127.0.0.1.
free_udp_tcp_port(0) -> error(no_free_port);
free_udp_tcp_port(N) ->
    {ok, T} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, P} = inet:port(T),
    case gen_udp:open(P, [{ip, {127, 0, 0, 1}}]) of
        {ok, U} -> gen_udp:close(U), gen_tcp:close(T), P;
        {error, _} -> gen_tcp:close(T), free_udp_tcp_port(N - 1)
    end.

wait_ready(#{port := Port} = Bind, 0) ->
    Output = drain(Port),
    stop(Bind),
    %% With the resolver's last answer: what named was asked and said.
    error({named_not_ready, Output, get({?MODULE, last_error})});
wait_ready(#{dns_port := P, port := Port} = Bind, N) ->
    Origin = maps:get(origin, Bind, "consul") ++ ".",
    case inet_res:resolve(Origin, in, soa, [{nameservers, [{{127, 0, 0, 1}, P}]},
                                            {timeout, 200}, {retry, 1}]) of
        {ok, _} -> ok;
        {error, Why} ->
            put({?MODULE, last_error}, {Origin, P, Why}),
            receive
                {Port, {exit_status, S}} -> error({named_exited, S, drain(Port)})
            after 100 -> port_taken(Bind), wait_ready(Bind, N - 1)
            end
    end.

%% named's stderr so far: "address in use" on its port means another
%% process took it first (start/2 retries elsewhere).
port_taken(#{port := Port} = Bind) ->
    Lines = drain(Port),
    case lists:any(fun(L) -> string:find(L, "address in use") =/= nomatch end, Lines) of
        true -> stop(Bind), error(port_taken);
        false -> ok
    end.

drain(Port) ->
    receive {Port, {data, {_, Line}}} -> [Line | drain(Port)] after 0 -> [] end.

%% The exit status reaches only the port's owner. A suite that starts named
%% in init_per_group and stops it in end_per_group calls from another
%% process (CT runs each in its own, and the port closed with the first):
%% there the OS process itself is watched, or stop would always wait out the
%% whole 10 s before its KILL.
-spec wait_exit(port(), non_neg_integer()) -> ok.
wait_exit(Port, OsPid) ->
    Self = self(),
    case erlang:port_info(Port, connected) of
        {connected, Self} -> wait_exit_status(Port, OsPid);
        _ -> wait_gone(OsPid, 500)
    end.

-spec wait_exit_status(port(), non_neg_integer()) -> ok.
wait_exit_status(Port, OsPid) ->
    receive
        {Port, {exit_status, _}} -> ok;
        {Port, {data, _}} -> wait_exit_status(Port, OsPid)
    after 10000 ->
            _ = os:cmd("kill -KILL " ++ integer_to_list(OsPid)),
            ok
    end.

%% Polls /proc every 20 ms, at most N times (10 s in all), then KILLs.
%% A zombie counts as gone: it has exited.
-spec wait_gone(non_neg_integer(), non_neg_integer()) -> ok.
wait_gone(OsPid, 0) ->
    _ = os:cmd("kill -KILL " ++ integer_to_list(OsPid)),
    ok;
wait_gone(OsPid, N) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            %% "PID (comm) S ...": the state follows the last ')'.
            [_, After] = string:split(Stat, ")", trailing),
            case string:trim(After, leading) of
                <<"Z", _/binary>> -> ok;
                _ -> timer:sleep(20), wait_gone(OsPid, N - 1)
            end;
        {error, _} -> ok
    end.
