# frozen_string_literal: true

require "puma/plugin"
require "redis"

# Stops Puma gracefully when mallet writes this dyno's stop key (SPEC §5 `redis-stop-key`).
#
# A background thread polls GET <MALLET_STOP_KEY_PREFIX><DYNO> every MALLET_POLL_INTERVAL
# seconds on MALLET_REDIS_URL (else REDIS_URL). When the key is present it is read and deleted
# in one MULTI, so of several consumers exactly one acts, and Puma is asked to stop the way
# SIGTERM would: no new connections, in-flight requests finish, then exit 0. On Heroku the dyno
# manager then restarts the dyno with fresh memory.
#
# Instance-exact stops: with HEROKU_DYNO_ID set (heroku labs:enable runtime-dyno-metadata), a key
# whose value ends in " instance=<uuid>" for another instance of this dyno name (preboot runs two
# web.1 at once) is left alone; without an id on either side the key is taken as before.
#
# Wake-ups: a second thread, on its own connection (a subscribed connection can do nothing else),
# subscribes to mallet:wake:<key>, on which mallet publishes right after writing the key. A message,
# and every (re)subscription (messages published while disconnected are lost), makes the poll
# thread look at once, so a stop starts within milliseconds; the key stays the signal and the poll
# the fallback. The message carries nothing: the poll thread reads the key with the same rules.
#
# Redis being down never stops or crashes Puma: the error is logged and polling backs off.
#
# SIGTERM, outside the trap: Puma 5's TERM trap logs, in trap context, on the main thread. A TERM
# that lands while that thread is itself writing to the same IO (a boot that logs, the cluster
# master's worker lines) makes the write lock recursive: "deadlock; recursive locking"
# (ThreadError) comes out of the interrupted write and Puma dies instead of stopping gracefully.
# So the plugin replaces Puma's TERM trap with one that only pushes onto a Queue (no Mutex, no
# IO: safe in a trap), and a thread of its own does the graceful stop Puma would have done.
Puma::Plugin.create do
  # No constants here: this block is class_eval'd, so they would land on Object.
  def start(launcher)
    @launcher = launcher
    guard_sigterm(launcher)
    dyno = ENV["DYNO"].to_s
    url = env_value("MALLET_REDIS_URL") || env_value("REDIS_URL")
    if dyno.empty? || url.nil?
      log "mallet: stop-key watcher off (#{dyno.empty? ? "DYNO" : "MALLET_REDIS_URL / REDIS_URL"} is unset)"
      return
    end
    key = (env_value("MALLET_STOP_KEY_PREFIX") || "puma::stop::") + dyno
    interval = poll_interval
    @instance_id = env_value("HEROKU_DYNO_ID").to_s
    channel = "mallet:wake:#{key}"
    @wake_lock = Mutex.new
    @wake_cond = ConditionVariable.new
    @woken = false
    log "mallet: watching stop key #{key} every #{interval}s#{@instance_id.empty? ? "" : " (instance #{printable(@instance_id)})"}, woken by #{channel}"
    in_background { watch(url, key, interval, channel) }
  end

  # Puma traps TERM right after starting plugins (Launcher#setup_signals), and in cluster mode the
  # master traps it again when its runner starts, before it starts background threads: take it
  # over after each.
  def guard_sigterm(launcher)
    return unless Signal.list.key?("TERM")

    plugin = self
    if launcher.respond_to?(:setup_signals, true)
      launcher.singleton_class.prepend(Module.new do
        define_method(:setup_signals) do |*args|
          result = super(*args)
          plugin.take_sigterm
          result
        end
        private :setup_signals
      end)
    end
    in_background { take_sigterm }
  end

  # Idempotent. Leaves TERM alone when Puma has no handler of its own for it.
  def take_sigterm
    @sigterms ||= Queue.new
    @sigterm_trap ||= begin
      master = Process.pid
      queue = @sigterms
      plugin = self
      proc do
        if Process.pid == master
          queue << :term
        else
          # A process forked from this one before it trapped TERM itself (a cluster worker
          # booting): Puma's own handler, which ends it.
          plugin.puma_sigterm&.call
        end
      end
    end
    previous = Signal.trap("TERM", @sigterm_trap)
    return if previous.equal?(@sigterm_trap)
    unless previous.respond_to?(:call)
      Signal.trap("TERM", previous)
      return
    end
    @puma_sigterm = previous
    @sigterm_thread ||= Thread.new { on_sigterm }
  end

  attr_reader :puma_sigterm

  # What Puma's trap does, from a plain thread: the graceful stop (no new connections, in-flight
  # requests finish), then, unless raise_exception_on_sigterm is false, the process ends by
  # SIGTERM as Puma's would. Stop is asked again until the process is gone: a TERM during boot
  # comes before there is a server to stop (it stops once booted), and asking again is harmless.
  def on_sigterm
    @sigterms.pop
    log "mallet: SIGTERM: stopping gracefully"
    options = @launcher.respond_to?(:options) ? @launcher.options : {}
    at_exit { raise SignalException, "TERM" } unless options[:raise_exception_on_sigterm] == false
    loop do
      @launcher.stop
      sleep 0.5
    end
  rescue StandardError => e
    log "mallet: SIGTERM handling failed (#{e.class}: #{printable(e.message)}); stopping Puma"
    @launcher.stop
  end

  def wake!
    @wake_lock.synchronize do
      @woken = true
      @wake_cond.signal
    end
  end

  # Sleeps up to `seconds`, less when woken (a wake-up that came while polling is not lost).
  def nap(seconds)
    @wake_lock.synchronize do
      @wake_cond.wait(@wake_lock, seconds) unless @woken
      @woken = false
    end
  end

  # How long a subscription may stay silent before it is re-made: a half-open TCP connection (a
  # NAT or proxy that forgot it) would otherwise hold it deaf, with only the poll left.
  def listen_timeout
    300
  end

  def listen(url, channel)
    failures = 0
    # nil: never subscribed; true: subscribed; false: lost since.
    listening = nil
    loop do
      redis = nil
      begin
        redis = connect(url)
        redis.subscribe_with_timeout(listen_timeout, channel) do |on|
          on.subscribe do
            log "mallet: #{listening.nil? ? "listening" : "listening again"} on #{channel} for wake-ups" unless listening
            listening = true
            failures = 0
            wake!
          end
          on.message { wake! }
        end
        # Returned: the connection went away quietly. Not at once again, should it keep doing so.
        listening &&= false
        sleep 1
      rescue Redis::TimeoutError
        nil # silent for listen_timeout: subscribe again (and poll at once, on the confirmation)
      rescue StandardError => e
        listening &&= false
        failures += 1
        delay = [2**[failures - 1, 5].min, 30].min
        log "mallet: cannot subscribe to #{channel} (#{e.class}: #{printable(e.message)}); polling alone, retrying in #{delay}s" if failures <= 3 || (failures % 10).zero?
        sleep delay
      ensure
        begin
          redis&.close
        rescue StandardError
          nil
        end
      end
    end
  end

  def watch(url, key, interval, channel)
    redis = nil
    failures = 0
    loop do
      begin
        redis ||= connect(url)
        reason = take(redis, key)
        # After the first look, so the listener's first wake-up is not lost in it. Not joined by
        # anything: the process exits under it, so it cannot delay Puma's shutdown.
        @listener ||= Thread.new { listen(url, channel) }
        if failures.positive?
          log "mallet: Redis reachable again"
          failures = 0
        end
        if reason
          log "mallet: stop key #{key} found (#{printable(reason)}): stopping gracefully"
          @listener&.kill
          # The key is taken: this is the only chance to act on it. A key found while Puma is
          # still booting comes before there is a server to stop, so ask until the process is
          # gone (as the SIGTERM thread does; asking again is harmless).
          loop do
            @launcher.stop
            sleep 0.5
          end
        end
        nap interval
      rescue StandardError => e
        # Redis down, DNS, TLS, auth: keep Puma serving and try again later.
        failures += 1
        delay = [interval * (2**[failures - 1, 10].min), 30.0].min
        log "mallet: cannot poll stop key (#{e.class}: #{printable(e.message)}); retrying in #{delay}s" if failures <= 3 || (failures % 10).zero?
        begin
          redis&.close
        rescue StandardError
          nil
        end
        redis = nil
        nap delay
      end
    end
  end

  # GET, and DEL unless the value names another instance, in one script (the same as
  # mallet/agent's), so of several consumers exactly one acts.
  def take(redis, key)
    redis.eval(<<~LUA, keys: [key], argv: [@instance_id.to_s])
      local v = redis.call('GET', KEYS[1])
      if not v then return false end
      local want = string.match(v, ' instance=([0-9a-f%-]+)$')
      if want and ARGV[1] ~= '' and want ~= ARGV[1] then return false end
      redis.call('DEL', KEYS[1])
      return v
    LUA
  end

  def connect(url)
    options = { url: url, connect_timeout: 2, read_timeout: 2, write_timeout: 2, reconnect_attempts: 0 }
    # Heroku Redis serves TLS with a self-signed certificate (same switch as mallet's own).
    if url.start_with?("rediss://") && env_value("REDIS_TLS_INSECURE") == "1"
      options[:ssl_params] = { verify_mode: OpenSSL::SSL::VERIFY_NONE }
    end
    Redis.new(**options)
  end

  def poll_interval
    raw = env_value("MALLET_POLL_INTERVAL")
    value = raw ? Float(raw, exception: false) : nil
    value && value.positive? ? value : 1.0
  end

  def env_value(name)
    value = ENV[name]
    value.nil? || value.empty? ? nil : value
  end

  # The value and error messages are data from elsewhere: one short printable line, and never a
  # URL with its password.
  def printable(text)
    text.to_s.gsub(%r{(rediss?://)[^@\s]*@}, '\1[redacted]@').gsub(/[^[:print:]]/, "?")[0, 200]
  end

  # Puma 6+ moved logging to log_writer; Puma 5 has it on events.
  def log(message)
    if @launcher.respond_to?(:log_writer)
      @launcher.log_writer.log(message)
    elsif @launcher.respond_to?(:events)
      @launcher.events.log(message)
    else
      $stdout.puts(message)
    end
  end
end
