// Follows a run in progress: its events (SSE) refresh the timeline; its end reloads the page.
(function(){
var trace=encodeURIComponent(document.currentScript.dataset.trace);
var es=new EventSource('/ui/traces/'+trace+'/events'),pending=false;
function refresh(){if(pending)return;pending=true;
 fetch('/traces/'+trace+'/timeline').then(function(r){return r.text();}).then(function(h){
  document.getElementById('timeline').innerHTML=h;pending=false;});}
['attempt_started','env_connected','setup','model_call','tool_call','answer','evaluation','error'].forEach(function(t){es.addEventListener(t,refresh);});
es.addEventListener('finished',function(){es.close();location.reload();});
})();
